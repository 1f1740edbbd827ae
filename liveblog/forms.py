"""Editor forms (Flask-WTF: each carries and checks its CSRF token)."""

from __future__ import annotations

from flask import current_app
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField
from wtforms import (
    BooleanField,
    Field,
    HiddenField,
    IntegerField,
    PasswordField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    AnyOf,
    DataRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from .models import MAX_USERNAME


class ConfigLength:
    """At most the app's configured number of characters: the same value the service checks
    and the template's `maxlength` shows, so the limit is declared once, in the config."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, form: FlaskForm, field: Field) -> None:
        limit = current_app.config[self.name]
        if field.data and len(field.data) > limit:
            raise ValidationError(f"Field cannot be longer than {limit} characters.")


def _username() -> StringField:
    """The username field, the same on the sign-in form and the admin's new-editor form."""
    return StringField(
        "Username",
        validators=[
            DataRequired(),
            Length(max=MAX_USERNAME),
            Regexp(r"^[^\x00-\x1f\x7f]*$", message="Type the username without control characters."),
        ],
    )


class LoginForm(FlaskForm):
    username = _username()
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class ArticleForm(FlaskForm):
    title = StringField(
        "Headline of the story", validators=[DataRequired(), ConfigLength("MAX_TITLE_CHARS")]
    )
    body = TextAreaField(
        "Introduction (Markdown)", validators=[Optional(), ConfigLength("MAX_BODY_CHARS")]
    )


class UpdateForm(FlaskForm):
    headline = StringField(
        "Headline (optional)", validators=[Optional(), ConfigLength("MAX_HEADLINE_CHARS")]
    )
    body = TextAreaField(
        "Update (Markdown)", validators=[DataRequired(), ConfigLength("MAX_BODY_CHARS")]
    )
    key_event = BooleanField("Key event")
    pinned = BooleanField("Pin to the top")
    # A fresh key per rendered form: sending the same form twice publishes it once.
    idempotency_key = HiddenField(validators=[Optional(), Length(max=64)])
    # Pillow checks the content (liveblog/media.py); the name check only helps the picker.
    image = FileField(
        "Image (JPEG, PNG, WebP or GIF, up to 10 MB)",
        validators=[FileAllowed(["jpg", "jpeg", "png", "webp", "gif"], "Pick an image file.")],
    )
    image_alt = StringField(
        "Image description (alt text)", validators=[ConfigLength("MAX_ALT_CHARS")]
    )
    draft = BooleanField("Save as draft")
    # ISO-8601 with the editor's UTC offset; the page's script fills it from a
    # datetime-local input, which has no zone of its own.
    publish_at = HiddenField(validators=[Optional(), Length(max=40)])

    def validate_image_alt(self, field: StringField) -> None:
        if self.image.data and not (field.data or "").strip():
            raise ValidationError("Describe the image for readers who cannot see it.")


class EditForm(FlaskForm):
    """Correct a published update, a draft or a scheduled one (each has its own form)."""

    headline = StringField("Headline", validators=[Optional(), ConfigLength("MAX_HEADLINE_CHARS")])
    body = TextAreaField(
        "Update (Markdown)", validators=[DataRequired(), ConfigLength("MAX_BODY_CHARS")]
    )
    key_event = BooleanField("Key event")
    pinned = BooleanField("Pinned")


class FlagForm(FlaskForm):
    """One click on Pin/Unpin or Key event on/off."""

    name = HiddenField(validators=[AnyOf(["pinned", "key_event"])])
    value = HiddenField(validators=[AnyOf(["on", "off"])])


class NewEditorForm(FlaskForm):
    username = _username()
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, max=1024)])
    admin = BooleanField("Admin (may create and disable editors)")


class StatusForm(FlaskForm):
    """Buttons that only need their CSRF token: end a story, reopen it, log out."""


class TokenForm(FlaskForm):
    """A new API token; left empty, it never expires."""

    expires_in_days = IntegerField(
        "Expires after (days, optional)", validators=[Optional(), NumberRange(min=1, max=3650)]
    )
