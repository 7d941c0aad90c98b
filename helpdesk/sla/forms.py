"""Forms of the SLA settings pages."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

PRIORITY_CHOICES = [("P1", "P1"), ("P2", "P2"), ("P3", "P3"), ("P4", "P4")]


class ClosedDayForm(FlaskForm):
    day = DateField(_l("休業日"), validators=[InputRequired(_l("日付を YYYY-MM-DD の形式で入力してください。"))],
                    format="%Y-%m-%d")
    reason = StringField(_l("理由"), validators=[Optional(), Length(max=200, message=_l("理由は200文字以内で入力してください。"))])


class PolicyForm(FlaskForm):
    priority = SelectField(_l("優先度"), choices=PRIORITY_CHOICES, validators=[DataRequired()])
    role = SelectField(_l("対象の利用者種別"), choices=[], validators=[Optional()])
    category = SelectField(_l("対象のカテゴリ"), choices=[], validators=[Optional()])
    first_response_minutes = IntegerField(
        _l("初回応答の目標（営業時間の分）"),
        validators=[InputRequired(_l("初回応答の目標を分で入力してください。")),
                    NumberRange(min=1, max=100_000, message=_l("1〜100000の分数で入力してください。"))])
    resolution_minutes = IntegerField(
        _l("解決の目標（営業時間の分）"),
        validators=[InputRequired(_l("解決の目標を分で入力してください。")),
                    NumberRange(min=1, max=1_000_000, message=_l("1〜1000000の分数で入力してください。"))])
    at_risk_percent = IntegerField(
        _l("期限間近とする経過率（%）"), default=75,
        validators=[InputRequired(_l("経過率を入力してください。")),
                    NumberRange(min=1, max=99, message=_l("1〜99で入力してください。"))])
    next_update_minutes = IntegerField(
        _l("次回更新の目標（営業時間の分、任意）"),
        validators=[Optional(), NumberRange(min=1, max=100_000, message=_l("1〜100000の分数で入力してください。"))])
    organisation_code = StringField(
        _l("対象の組織コード（任意）"),
        validators=[Optional(), Length(max=32, message=_l("組織コードは32文字以内で入力してください。"))])
    auto_escalate = BooleanField(_l("超過したら自動で L2 にエスカレーションする"))


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
