"""Parse an inbound e-mail (raw RFC 5322 bytes) into the fields a ticket needs.

Framework-free. Japanese mail arrives in every charset of the last 30 years: ISO-2022-JP (often
with Windows extensions such as ① or ㈱, which Python's strict codec refuses), Shift_JIS (really
cp932), EUC-JP and UTF-8, in bodies, RFC 2047 encoded-words, RFC 2231 filenames and sometimes raw
8-bit headers. Everything is decoded to str here, loss-free where the bytes allow it, and with
U+FFFD replacement characters (never an exception) where they do not.
"""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import unicodedata
from dataclasses import dataclass, field
from email.header import Header, decode_header
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from html.parser import HTMLParser

#: Whole message size limit (the SMTP server announces it and answers 552 above it).
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
_REF_RE = re.compile(r"\[\s*HD-(\d{6,12})\s*\]", re.IGNORECASE)
_MSGID_RE = re.compile(r"<[^<>\s]+>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class MailTooLarge(ValueError):
    """The message is larger than the accepted maximum."""

    def __init__(self, size: int, limit: int):
        super().__init__(f"message of {size} bytes exceeds the limit of {limit} bytes")
        self.size, self.limit = size, limit


@dataclass
class InboundAttachment:
    filename: str
    content: bytes
    content_type: str


@dataclass
class InboundMail:
    from_addr: str
    from_name: str
    subject: str
    #: The new text of the mail (quoted earlier messages trimmed where recognisable).
    text: str
    #: The whole decoded text body, quotes included.
    full_text: str
    to: list[str] = field(default_factory=list)
    attachments: list[InboundAttachment] = field(default_factory=list)
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    #: "HD-000123" when the subject carries [HD-000123].
    ticket_ref: str | None = None
    is_auto: bool = False
    #: Why the mail counts as automatic (header name), for the log.
    auto_reason: str | None = None
    date: dt.datetime | None = None
    size: int = 0

    @property
    def thread_ids(self) -> list[str]:
        """Message ids this mail answers, nearest first (In-Reply-To, then References newest first)."""
        ids = [self.in_reply_to] if self.in_reply_to else []
        ids += [r for r in reversed(self.references) if r not in ids]
        return ids


# --- charsets -------------------------------------------------------------------------------

_CP932 = {"shift_jis", "shift-jis", "sjis", "x-sjis", "s-jis", "ms_kanji", "csshiftjis", "windows-31j",
          "cp932", "ms932", "x-ms-cp932"}
_JIS = {"iso-2022-jp", "iso2022jp", "iso2022_jp", "csiso2022jp", "iso-2022-jp-1", "iso-2022-jp-2",
        "iso-2022-jp-3", "iso-2022-jp-2004", "iso-2022-jp-ms", "cp50220", "cp50221", "cp50222"}
_EUC = {"euc-jp", "eucjp", "euc_jp", "x-euc-jp", "cseucpkdfmtjapanese", "cp51932", "euc-jis-2004"}


def _jis_to_sjis(j1: int, j2: int) -> bytes:
    s1 = ((j1 - 0x21) >> 1) + 0x81
    if s1 > 0x9F:
        s1 += 0x40
    if j1 & 1:
        s2 = j2 + 0x1F + (1 if j2 >= 0x60 else 0)
    else:
        s2 = j2 + 0x7E
    return bytes((s1, s2))


def decode_iso2022jp(data: bytes) -> str:
    """ISO-2022-JP with the Windows (CP50220) extensions: NEC specials, IBM extensions, half-width kana."""
    try:
        return data.decode("iso2022_jp")
    except UnicodeDecodeError:
        pass
    out: list[str] = []
    sjis = bytearray()
    mode, i, n = "ascii", 0, len(data)

    def flush() -> None:
        if sjis:
            out.append(bytes(sjis).decode("cp932", "replace"))
            sjis.clear()

    while i < n:
        b = data[i]
        if b == 0x1B:
            seq3, seq4 = data[i:i + 3], data[i:i + 4]
            if seq3 in (b"\x1b(B", b"\x1b(J"):
                mode, i = "ascii", i + 3
                continue
            if seq3 in (b"\x1b$B", b"\x1b$@"):
                mode, i = "jis", i + 3
                continue
            if seq3 == b"\x1b(I":
                mode, i = "kana", i + 3
                continue
            if seq4 in (b"\x1b$(Q", b"\x1b$(O", b"\x1b$(D"):
                mode, i = "jis", i + 4  # JIS X 0213 / 0212 plane 1: best effort through cp932
                continue
        if b == 0x0E:  # SO: half-width katakana shift
            mode, i = "kana", i + 1
            continue
        if b == 0x0F:
            mode, i = "ascii", i + 1
            continue
        if mode == "jis" and 0x21 <= b <= 0x7E and i + 1 < n and 0x21 <= data[i + 1] <= 0x7E:
            sjis += _jis_to_sjis(b, data[i + 1])
            i += 2
            continue
        if mode == "kana" and 0x21 <= b <= 0x5F:
            sjis.append(b + 0x80)
            i += 1
            continue
        if mode == "jis" and b in (0x0A, 0x0D):
            mode = "ascii"  # a line break ends a JIS run in broken mailers
        flush()
        out.append(chr(b) if b < 0x80 else "\ufffd")
        i += 1
    flush()
    return "".join(out)


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode `data` in the declared charset, with Japanese aliases mapped to their supersets."""
    name = (charset or "").strip().strip('"').lower()
    if name in _JIS or (not name and b"\x1b$" in data):
        return decode_iso2022jp(data)
    if name in _CP932:
        return data.decode("cp932", "replace")
    if name in _EUC:
        try:
            return data.decode("euc_jp")
        except UnicodeDecodeError:
            return data.decode("euc_jis_2004", "replace")
    if name in ("", "us-ascii", "ascii", "unknown-8bit", "x-unknown", "default"):
        return guess_decode(data)
    try:
        return data.decode(name)
    except LookupError:
        return guess_decode(data)
    except UnicodeDecodeError:
        # Declared wrong (e.g. "utf-8" but really cp932): guess rather than show mojibake.
        return guess_decode(data)


def guess_decode(data: bytes) -> str:
    """Decode bytes of unknown charset: ASCII/JIS, UTF-8, cp932, EUC-JP, in that order."""
    if b"\x1b$" in data or b"\x1b(" in data:
        return decode_iso2022jp(data)
    for codec in ("utf-8", "cp932", "euc_jp"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace")


def decode_header_value(value) -> str:
    """Decode an RFC 2047 header (or raw 8-bit bytes in one) to a single clean line."""
    if value is None:
        return ""
    if isinstance(value, Header):
        # compat32 hands back raw 8-bit header bytes as a Header in the "unknown-8bit" charset.
        value = "".join(decode_bytes(chunk, str(charset)) if isinstance(chunk, bytes) else chunk
                        for chunk, charset in decode_header(value))
    if not isinstance(value, str):
        value = str(value)
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        # Raw 8-bit header bytes, kept by the parser as surrogate escapes.
        value = guess_decode(value.encode("ascii", "surrogateescape"))
    parts: list[str] = []
    try:
        chunks = decode_header(value)
    except Exception:  # malformed encoded-word: keep the raw text rather than lose the header
        chunks = [(value, None)]
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            parts.append(decode_bytes(chunk, charset))
        else:
            parts.append(chunk)
    text = "".join(parts)
    text = _CONTROL.sub("", text.replace("\r", " ").replace("\n", " "))
    return re.sub(r"[ \t]{2,}", " ", text).strip()


# --- HTML to text ---------------------------------------------------------------------------

_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
          "blockquote", "pre", "hr", "section", "article", "header", "footer", "dd", "dt"}
_SKIP = {"script", "style", "head", "title", "noscript", "template", "svg", "object", "iframe"}


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.parts.append("\n")
        elif tag == "td":
            self.parts.append("\t")

    def handle_startendtag(self, tag, attrs):
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(re.sub(r"[ \t\r\n]+", " ", data))


def html_to_text(html: str) -> str:
    """Visible text of an HTML mail body; scripts, styles and markup dropped (never rendered)."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # malformed markup: keep whatever text was read
        pass
    lines = [line.strip() for line in "".join(parser.parts).split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- quoted text ----------------------------------------------------------------------------

_CUT_PATTERNS = [
    re.compile(r"^-{2,}\s*original message\s*-{2,}", re.IGNORECASE),
    re.compile(r"^-{2,}\s*(元の|転送|以下)?メッセージ\s*-{2,}"),
    re.compile(r"^-{2,}\s*forwarded message\s*-{2,}", re.IGNORECASE),
    re.compile(r"^on .{3,200} wrote:$", re.IGNORECASE),
    re.compile(r"^.{3,200}(さんは|のメッセージ)(書きました|:|：)"),
    re.compile(r"^.{3,200} に .{1,200} は書きました[:：]$"),
    re.compile(r"^from:\s.+", re.IGNORECASE),
    re.compile(r"^差出人[:：]\s*.+"),
]


def trim_quoted(text: str) -> str:
    """Drop quoted earlier messages: '>' lines and everything from an 'Original Message' marker on."""
    kept: list[str] = []
    for line in text.split("\n"):
        plain = unicodedata.normalize("NFKC", line).strip()
        if any(p.match(plain) for p in _CUT_PATTERNS):
            break
        if plain.startswith(">"):
            continue
        kept.append(line.rstrip())
    trimmed = "\n".join(kept).strip()
    return trimmed or text.strip()


# --- the message ----------------------------------------------------------------------------

def _addr(value: str) -> tuple[str, str]:
    name, address = parseaddr(value)
    return decode_header_value(name), address.strip().lower()


def _msgid(value) -> str | None:
    if not value:
        return None
    found = _MSGID_RE.findall(str(value))
    return found[0][:255] if found else None


def _auto_reason(msg: Message, from_addr: str) -> str | None:
    auto_submitted = (msg.get("Auto-Submitted") or "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return "Auto-Submitted"
    if (msg.get("Precedence") or "").strip().lower() in ("bulk", "junk", "list", "auto_reply"):
        return "Precedence"
    for header in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "X-Failed-Recipients"):
        if msg.get(header) is not None:
            return header
    local = from_addr.split("@")[0]
    if local in ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"):
        return "From"
    if msg.get("Return-Path") is not None and (msg.get("Return-Path") or "").strip() in ("<>", ""):
        return "Return-Path"
    if msg.get_content_type() == "multipart/report":
        return "multipart/report"
    return None


def _filename(part: Message) -> str | None:
    raw = part.get_filename()
    if raw is None:
        raw = part.get_param("name")
        if isinstance(raw, tuple):  # RFC 2231 value
            raw = email.utils.collapse_rfc2231_value(raw)
    if raw is None:
        return None
    # Many Japanese mailers put RFC 2047 encoded-words into the (quoted) filename parameter.
    return decode_header_value(raw) or None


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True) or b""
    return decode_bytes(payload, part.get_content_charset()).replace("\r\n", "\n").replace("\r", "\n")


def parse_message(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> InboundMail:
    """Parse raw message bytes; MailTooLarge above `max_bytes`."""
    if not isinstance(raw, (bytes, bytearray)):
        raise TypeError("parse_message expects the raw message bytes")
    if len(raw) > max_bytes:
        raise MailTooLarge(len(raw), max_bytes)
    msg = email.message_from_bytes(bytes(raw), policy=email.policy.compat32)
    from_name, from_addr = _addr(decode_header_value(msg.get("From")) if msg.get("From") else "")
    if not from_addr and msg.get("Sender"):
        from_name, from_addr = _addr(decode_header_value(msg.get("Sender")))
    subject = decode_header_value(msg.get("Subject"))
    ref_match = _REF_RE.search(unicodedata.normalize("NFKC", subject))
    to = [a.lower() for _n, a in getaddresses([decode_header_value(v) for v in msg.get_all("To", [])]) if a]

    plain, html, attachments = None, None, []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        filename = _filename(part)
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and filename is None:
            if ctype == "text/plain" and plain is None:
                plain = _part_text(part)
                continue
            if ctype == "text/html" and html is None:
                html = _part_text(part)
                continue
        if ctype in ("message/delivery-status", "message/rfc822-headers"):
            continue
        payload = part.get_payload(decode=True)
        if payload is None:
            continue
        if filename is None:
            if disposition != "attachment" and ctype.startswith("text/"):
                continue  # a second alternative body, not a file
            ext = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif",
                   "application/pdf": ".pdf"}.get(ctype, ".bin")
            filename = f"attachment-{len(attachments) + 1}{ext}"
        attachments.append(InboundAttachment(filename=filename, content=payload, content_type=ctype))

    if plain is not None and plain.strip():
        full = plain
    elif html is not None:
        full = html_to_text(html)
    else:
        full = plain or ""
    full = _CONTROL.sub("", full).strip()
    date = None
    if msg.get("Date"):
        try:
            date = parsedate_to_datetime(str(msg.get("Date")))
            if date is not None and date.tzinfo is None:
                date = None
        except (TypeError, ValueError, IndexError):
            date = None
    reason = _auto_reason(msg, from_addr)
    return InboundMail(
        from_addr=from_addr, from_name=from_name, subject=subject, text=trim_quoted(full), full_text=full,
        to=to, attachments=attachments, message_id=_msgid(msg.get("Message-ID")),
        in_reply_to=_msgid(msg.get("In-Reply-To")),
        references=[m[:255] for m in _MSGID_RE.findall(str(msg.get("References") or ""))][-50:],
        ticket_ref=f"HD-{int(ref_match.group(1)):06d}" if ref_match else None,
        is_auto=reason is not None, auto_reason=reason, date=date, size=len(raw),
    )
