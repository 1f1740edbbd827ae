"""Editor forms (Flask-WTF: each carries and checks its CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp


class LoginForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[
            DataRequired(),
            Length(max=64),
            Regexp(r"^[^\x00-\x1f\x7f]*$", message="Type the username without control characters."),
        ],
    )
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class ArticleForm(FlaskForm):
    title = StringField("Headline of the story", validators=[DataRequired(), Length(max=200)])
    body = TextAreaField("Introduction (Markdown)", validators=[Optional(), Length(max=20_000)])


class UpdateForm(FlaskForm):
    headline = StringField("Headline (optional)", validators=[Optional(), Length(max=200)])
    body = TextAreaField("Update (Markdown)", validators=[DataRequired(), Length(max=20_000)])
    key_event = BooleanField("Key event")
    pinned = BooleanField("Pin to the top")
    # A fresh key per rendered form: sending the same form twice publishes it once.
    idempotency_key = HiddenField(validators=[Optional(), Length(max=64)])


class StatusForm(FlaskForm):
    """Buttons that only need their CSRF token: end a story, reopen it, log out."""


class TokenForm(FlaskForm):
    """A new API token; left empty, it never expires."""

    expires_in_days = IntegerField(
        "Expires after (days, optional)", validators=[Optional(), NumberRange(min=1, max=3650)]
    )
