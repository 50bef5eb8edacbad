"""Flask-WTF forms: every one carries a CSRF token; errors show next to their field."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DecimalField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from common.webhook import url_problem
from config.symbols import ticker_problem
from flask_web_app.validation import password_problem

SAME_PASSWORD = EqualTo("password", "The passwords differ.")  # the "repeat" field of both password forms

class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _lower(value: str | None) -> str | None:
    return value.strip().lower() if isinstance(value, str) else value


class StrongPassword:
    """Password strength check; reads the email and name fields of the same form."""

    def __call__(self, form: FlaskForm, field: PasswordField) -> None:
        # A form without email/name fields (change password) sets password_context.
        context = getattr(form, "password_context", None)
        if context is None:
            context = tuple(getattr(getattr(form, f, None), "data", "") or "" for f in ("email", "name"))
        problem = password_problem(field.data or "", *context)
        if problem:
            raise ValidationError(problem)


class HtmlForm(FlaskForm):
    """A form filled from an HTML form post only.

    Flask-WTF would also fill fields from a JSON body, handing them dicts and lists
    such as {"$ne": null} instead of strings (a 500 at best, an operator in a MongoDB
    filter at worst). A JSON body leaves these forms empty, so they fail validation.
    """

    class Meta:
        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            data = super().wrap_formdata(form, formdata)  # type: ignore[misc]
            if data is not None and request.is_json and not request.form:
                return None
            return data


class RegisterForm(HtmlForm):
    email = EmailField("Email", filters=[_lower],
                       validators=[DataRequired(), Length(max=254), Email(check_deliverability=False)])
    name = StringField("Name", filters=[_strip], validators=[DataRequired(), Length(max=100)])
    password = PasswordField("Password", validators=[DataRequired(), StrongPassword()])
    confirm = PasswordField("Repeat password", validators=[DataRequired(), SAME_PASSWORD])
    watchlist = MultiCheckboxField("Watchlist (none ticked = all symbols)", choices=[])
    digest_opt_in = BooleanField("Daily news digest by email", default=True)
    alert_opt_in = BooleanField("Price and volume alerts by email", default=False)
    submit = SubmitField("Create account")


class LoginForm(HtmlForm):
    email = EmailField("Email", filters=[_lower], validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    submit = SubmitField("Log in")


class AtLeastSystem:
    """A user's own threshold may be stricter than the system's, never looser
    (alert_log is the system's record; users receive a subset of it)."""

    def __init__(self, setting: str, unit: str) -> None:
        self.setting, self.unit = setting, unit

    def __call__(self, form: FlaskForm, field: DecimalField) -> None:
        floor = float(current_app.config[self.setting])
        if field.data is not None and float(field.data) < floor:
            raise ValidationError(f"At least the system's {floor:g}{self.unit} (leave empty to use it).")


class WebhookUrl:
    def __call__(self, form: FlaskForm, field: StringField) -> None:
        if field.data and (problem := url_problem(field.data, current_app.config["WEBHOOK_ALLOWED_HTTP_HOSTS"],
                                                  current_app.config["WEBHOOK_ALLOWED_INTERNAL_HOSTS"])):
            raise ValidationError(problem)


class AccountForm(HtmlForm):
    name = StringField("Name", filters=[_strip], validators=[DataRequired(), Length(max=100)])
    watchlist = MultiCheckboxField("Watchlist (none ticked = all symbols; alerts follow it too)", choices=[])
    digest_opt_in = BooleanField("Daily news digest by email")
    alert_opt_in = BooleanField("Price and volume alerts (email, and your webhook if you give one)")
    alert_price_threshold = DecimalField(
        "Price move that alerts you, % from the previous close (empty = the system's)", places=2,
        validators=[Optional(), NumberRange(max=100), AtLeastSystem("PRICE_CHANGE_THRESHOLD", "%")])
    alert_volume_multiplier = DecimalField(
        "Volume spike that alerts you, x the usual volume (empty = the system's)", places=2,
        validators=[Optional(), NumberRange(max=1000), AtLeastSystem("VOLUME_THRESHOLD_MULTIPLIER", "x")])
    alert_daily_cap = IntegerField("At most this many alerts a day (empty = the system's)",
                                   validators=[Optional(), NumberRange(min=1, max=1000)])
    alert_webhook_url = StringField("Webhook URL (Slack or Discord incoming webhook; https)", filters=[_strip],
                                    validators=[Optional(), Length(max=500), WebhookUrl()])
    submit = SubmitField("Save")

    def alert_rules(self) -> dict[str, object]:
        """The alert fields as stored on the user (None = the system's)."""
        def num(field: DecimalField) -> float | None:
            return None if field.data is None else float(field.data)

        return {"alert_price_threshold": num(self.alert_price_threshold),
                "alert_volume_multiplier": num(self.alert_volume_multiplier),
                "alert_daily_cap": self.alert_daily_cap.data, "alert_webhook_url": self.alert_webhook_url.data or None}


class PasswordForm(HtmlForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=200)])
    password = PasswordField("New password", validators=[DataRequired(), StrongPassword()])
    confirm = PasswordField("Repeat new password", validators=[DataRequired(), SAME_PASSWORD])
    submit_password = SubmitField("Change password")


class LogoutForm(HtmlForm):
    submit = SubmitField("Log out")


class ConfirmAgainForm(HtmlForm):
    submit_confirm = SubmitField("Send the confirmation link again")


class Ticker:
    def __call__(self, form: FlaskForm, field: StringField) -> None:
        if problem := ticker_problem(field.data):
            raise ValidationError(problem)


class AddSymbolForm(HtmlForm):
    symbol = StringField("Follow another ticker", filters=[_strip], validators=[Ticker()])
    submit_symbol = SubmitField("Add")


class RemoveSymbolForm(HtmlForm):
    submit_remove = SubmitField("Remove")


LEVEL_MAX = 1_000_000.0  # no listed share trades above this: a level beyond it is a typo


class LevelRuleForm(HtmlForm):
    """A price-level rule ("tell me when AAPL goes above 300"). The owner is the signed-in
    user, never a field; the symbol must be one the system follows (checked in the view)."""

    symbol = StringField("Symbol", filters=[_strip], validators=[DataRequired(), Ticker()],
                         render_kw={"list": "level-symbols"})
    direction = SelectField("When the price goes", choices=[SelectChoice("above", "at or above"),
                                                            SelectChoice("below", "at or below")])
    level = DecimalField("Price", places=4, validators=[
        InputRequired("Give a price."),
        NumberRange(min=0.0001, max=LEVEL_MAX, message=f"A price above 0 and at most {LEVEL_MAX:,.0f}.")])
    mode = SelectField("Then", choices=[SelectChoice("rearm", "alert again after the price went back"),
                                        SelectChoice("once", "alert once, then stop")])
    back = HiddenField(default="account")  # the page the form is on: errors show there
    submit_level = SubmitField("Add price alert")


class DeleteLevelForm(HtmlForm):
    back = HiddenField(default="account")
    submit_delete = SubmitField("Delete")
