"""Forms of the SLA settings pages."""
from __future__ import annotations

import unicodedata

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

PRIORITY_CHOICES = [("P1", "P1"), ("P2", "P2"), ("P3", "P3"), ("P4", "P4")]


class ClosedDayForm(FlaskForm):
    day = DateField(_l("休業日"), validators=[InputRequired(_l("日付を YYYY-MM-DD の形式で入力してください。"))],
                    format="%Y-%m-%d")
    reason = StringField(_l("理由"), validators=[Optional(), Length(max=200, message=_l("理由は200文字以内で入力してください。"))])


def _digits(value):
    """Full-width digits and surrounding blanks as typed on a Japanese keyboard → plain text."""
    return unicodedata.normalize("NFKC", value).strip() if isinstance(value, str) else value


def _hours_field(label):
    return StringField(label, filters=[_digits], render_kw={"inputmode": "numeric", "size": 6},
                       validators=[Optional(), Regexp(r"^\d{1,6}$", message=_l("時間は 0 以上の整数で入力してください（例: 8）。"))])


def _minutes_field(label):
    return StringField(label, filters=[_digits], render_kw={"inputmode": "numeric", "size": 3},
                       validators=[Optional(), Regexp(r"^([0-5]?\d)$", message=_l("分は 0〜59 の整数で入力してください。"))])


#: (field prefix, words, required, upper limit in minutes, the limit in words) of each target (issue 16.10).
TARGETS = (
    ("first_response", _l("初回応答の目標"), True, 100_000, _l("1666時間40分")),
    ("resolution", _l("解決の目標"), True, 1_000_000, _l("16666時間40分")),
    ("next_update", _l("次回更新の目標"), False, 100_000, _l("1666時間40分")),
)


class PolicyForm(FlaskForm):
    """Targets as hours + minutes (two labelled inputs each, business time); stored as minutes.

    After `validate()`, `minutes[prefix]` holds each target in minutes (None for an empty optional one);
    every input shows at most one message.
    """

    priority = SelectField(_l("優先度"), choices=PRIORITY_CHOICES, validators=[DataRequired()])
    role = SelectField(_l("対象の利用者種別"), choices=[], validators=[Optional()])
    category = SelectField(_l("対象のカテゴリ"), choices=[], validators=[Optional()])
    first_response_hours = _hours_field(_l("初回応答の目標（時間）"))
    first_response_mins = _minutes_field(_l("初回応答の目標（分）"))
    resolution_hours = _hours_field(_l("解決の目標（時間）"))
    resolution_mins = _minutes_field(_l("解決の目標（分）"))
    next_update_hours = _hours_field(_l("次回更新の目標（時間）"))
    next_update_mins = _minutes_field(_l("次回更新の目標（分）"))
    at_risk_percent = IntegerField(
        _l("期限間近とする経過率（%）"), default=75,
        validators=[InputRequired(_l("経過率を入力してください。")),
                    NumberRange(min=1, max=99, message=_l("1〜99で入力してください。"))])
    organisation_code = StringField(
        _l("対象の組織コード（任意）"),
        validators=[Optional(), Length(max=32, message=_l("組織コードは32文字以内で入力してください。"))])
    auto_escalate = BooleanField(_l("超過したら自動で L2 にエスカレーションする"))

    def set_minutes(self, **minutes) -> None:
        """Fill the hour/minute inputs from stored minutes (editing a policy)."""
        for prefix, value in minutes.items():
            if value is not None:
                getattr(self, f"{prefix}_hours").data = str(value // 60)
                getattr(self, f"{prefix}_mins").data = str(value % 60)

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        self.minutes: dict[str, int | None] = {}
        for prefix, what, required, limit, limit_words in TARGETS:
            hours, mins = getattr(self, f"{prefix}_hours"), getattr(self, f"{prefix}_mins")
            if hours.errors or mins.errors:
                ok = False
                continue
            if not hours.data and not mins.data:
                self.minutes[prefix] = None
                if required:
                    hours.errors = [_l("%(what)sを時間と分で入力してください（例: 8 時間 0 分）。", what=what)]
                    ok = False
                continue
            total = int(hours.data or 0) * 60 + int(mins.data or 0)
            if total < 1:
                hours.errors = [_l("%(what)sは 1 分以上にしてください。", what=what)]
                ok = False
            elif total > limit:
                hours.errors = [_l("%(what)sは %(limit)s 以内にしてください。", what=what, limit=limit_words)]
                ok = False
            else:
                self.minutes[prefix] = total
        return ok


class DeleteForm(FlaskForm):
    """CSRF-only form for delete buttons."""


WEEKDAY_LABELS = (_l("月曜日"), _l("火曜日"), _l("水曜日"), _l("木曜日"), _l("金曜日"), _l("土曜日"), _l("日曜日"))
_TOO_LONG = _l("100文字以内で入力してください。")
_HOURS_HINT = _l("例: 09:00-18:00（休憩を挟むときは 09:00-12:00, 13:00-18:00、休みは空欄）")


class DeskHoursForm(FlaskForm):
    """Desk hours per weekday as "HH:MM-HH:MM" text (checked by service.parse_day_hours, one message per field)."""

    mon = StringField(WEEKDAY_LABELS[0], validators=[Optional(), Length(max=100, message=_TOO_LONG)])
    tue = StringField(WEEKDAY_LABELS[1], validators=[Optional(), Length(max=100, message=_TOO_LONG)])
    wed = StringField(WEEKDAY_LABELS[2], validators=[Optional(), Length(max=100, message=_TOO_LONG)])
    thu = StringField(WEEKDAY_LABELS[3], validators=[Optional(), Length(max=100, message=_TOO_LONG)])
    fri = StringField(WEEKDAY_LABELS[4], validators=[Optional(), Length(max=100, message=_TOO_LONG)])
    sat = StringField(WEEKDAY_LABELS[5], validators=[Optional(), Length(max=100, message=_TOO_LONG)])
    sun = StringField(WEEKDAY_LABELS[6], validators=[Optional(), Length(max=100, message=_TOO_LONG)])
    public_holidays = BooleanField(_l("祝日（振替休日を含む）は休み"))
    year_end_closure = BooleanField(_l("年末年始（12/29〜1/3）は休み"))

    hint = _HOURS_HINT


class IcsImportForm(FlaskForm):
    ics = FileField(_l("iCalendar ファイル（.ics）"), validators=[FileRequired(_l("取り込む .ics ファイルを選んでください。"))])
