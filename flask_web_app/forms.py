"""Flask-WTF forms: every one carries a CSRF token; errors show next to their field."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectMultipleField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from flask_web_app.validation import password_problem


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
    confirm = PasswordField("Repeat password", validators=[DataRequired(), EqualTo("password", "The passwords differ.")])
    watchlist = MultiCheckboxField("Watchlist (none ticked = all symbols)", choices=[])
    digest_opt_in = BooleanField("Daily news digest by email", default=True)
    alert_opt_in = BooleanField("Price and volume alerts by email", default=False)
    submit = SubmitField("Create account")


class LoginForm(HtmlForm):
    email = EmailField("Email", filters=[_lower], validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    submit = SubmitField("Log in")


class AccountForm(HtmlForm):
    name = StringField("Name", filters=[_strip], validators=[DataRequired(), Length(max=100)])
    watchlist = MultiCheckboxField("Watchlist (none ticked = all symbols)", choices=[])
    digest_opt_in = BooleanField("Daily news digest by email")
    alert_opt_in = BooleanField("Price and volume alerts by email")
    submit = SubmitField("Save")


class PasswordForm(HtmlForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=200)])
    password = PasswordField("New password", validators=[DataRequired(), StrongPassword()])
    confirm = PasswordField("Repeat new password", validators=[DataRequired(), EqualTo("password", "The passwords differ.")])
    submit_password = SubmitField("Change password")


class LogoutForm(HtmlForm):
    submit = SubmitField("Log out")
