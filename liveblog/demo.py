"""The demo story that a new installation opens with: 19 September 2023 in Nagorno-Karabakh."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa

from . import services
from .extensions import db
from .models import Article, Editor

SLUG = "nagorno-karabakh-offensive"
TITLE = "Azerbaijan launches offensive in Nagorno-Karabakh"
AUTHOR = "newsdesk"

BODY = """\
Azerbaijan's army moved against the ethnic Armenian-held region of **Nagorno-Karabakh** on
Tuesday, 19 September 2023, in what Baku calls an "anti-terrorist" operation. The region's
de facto capital, Stepanakert, reports shelling; Armenia and the European Union have called
for the fighting to stop.

This page is updated as the story develops. Times are shown in your own time zone.
"""

# (hour and minute in UTC on 19 September 2023, headline, body, key event, pinned)
UPDATES = [
    (9, 5, "Azerbaijan announces military operation",
     "Azerbaijan's defence ministry says the army has begun \"local anti-terrorist measures\" "
     "in Nagorno-Karabakh. Its stated aim is to restore the country's constitutional order in "
     "the region, which has been run by ethnic Armenians since the early 1990s.",
     True, False),
    (9, 30, "Baku blames mines for six deaths",
     "Before the announcement, Azerbaijani officials said that mines laid by Armenian "
     "\"reconnaissance-subversion groups\" had killed six people travelling in civilian and "
     "military vehicles. Armenian officials dispute the account, and it could not be "
     "independently verified.",
     False, False),
    (10, 10, "Weeks of warning signs",
     "The offensive did not come out of nowhere. For weeks, observers had tracked:\n\n"
     "- Azerbaijani troops massing near the region;\n"
     "- a rise in cargo flights from Israel, one of Azerbaijan's main arms suppliers;\n"
     "- a blockade of the **Lachin Corridor**, the only road to Armenia, in force for more "
     "than nine months.",
     False, False),
    (10, 45, "Shelling reported in Stepanakert",
     "Baku insists that only military targets are being struck. Accounts from Stepanakert "
     "describe shelling of the city and civilians among the wounded and dead.",
     False, False),
    (11, 20, "Background: the 2020 ceasefire",
     "The second Karabakh war ended in 2020 with a ceasefire brokered by Moscow, which sent "
     "Russian peacekeepers into the region. Since Russia's full-scale invasion of Ukraine, its "
     "capacity to step in has largely disappeared.",
     False, False),
    (12, 0, "Pashinyan: Armenia will not be drawn in",
     "Armenia's prime minister, **Nikol Pashinyan**, accuses Azerbaijan of trying to pull "
     "Armenia into a wider war. Armenia, he says, is not taking part in the fighting and will "
     "not become involved.",
     False, False),
    (12, 40, "EU calls for an immediate halt",
     "Charles Michel, President of the European Council, says the military action must stop "
     "at once. The office of the EU's foreign-policy chief, Josep Borrell, condemns the "
     "escalation.",
     False, False),
    (13, 25, "Moscow urges a return to talks",
     "Russia calls on both sides to end the bloodshed and go back to negotiations. It rejects "
     "Baku's statement that Moscow had been warned of the assault beforehand.",
     False, False),
    (14, 15, "Protest in Yerevan",
     "Crowds are gathering near the government building in the Armenian capital, Yerevan.",
     False, False),
    (18, 0, "Blinken to hold urgent talks",
     "A US official says Secretary of State **Antony Blinken** will speak with all sides "
     "within 24 hours. In a statement, Blinken calls for hostilities to end immediately and "
     "for dialogue between Baku and the people of Nagorno-Karabakh.",
     True, True),
]  # fmt: skip


def _author() -> Editor:
    editor = db.session.scalar(sa.select(Editor).where(Editor.username == AUTHOR))
    # The desk account only signs the demo; nobody knows its password.
    return editor or services.create_editor(AUTHOR, secrets.token_urlsafe(24))


def load() -> bool:
    """Create the demo story through the same services editors use; False if already there."""
    if Article.by_slug(SLUG) is not None:
        return False
    author = _author()
    story = services.create_article(TITLE, slug=SLUG, body=BODY)
    for hour, minute, headline, body, key_event, pinned in UPDATES:
        services.post_update(
            story,
            author,
            body=body,
            headline=headline,
            key_event=key_event,
            pinned=pinned,
            published_at=datetime(2023, 9, 19, hour, minute, tzinfo=UTC),
        )
    return True
