"""Private messages between clients and coaches, and who may message whom.

Two users may message each other while one of these is true, counting active
enrollments in programs with messaging enabled only:

- one is the coach of a cohort the other is enrolled in;
- both are clients of the same program.

No user may start a conversation or send a message while
``coaching.messaging_enabled`` is false. Existing conversations stay readable by
their two participants, and only by them, whatever their roles: another user's
conversation is reported as not found, as bridge.auth does for other objects.

Bodies are plain text of 1 to ``MAX_BODY_LENGTH`` characters. They are stored as
sent and escaped wherever they are rendered. Logs and activity entries never
contain them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from bridge import activity
from bridge.auth import Actor
from bridge.errors import CoachbridgeError, InvalidRequest, NotFound, Unavailable
from bridge.models import (
    ActivityType,
    Coach,
    Cohort,
    Conversation,
    Enrollment,
    EnrollmentStatus,
    Message,
    Program,
)
from bridge.runtime import Runtime
from sync.reader import WordPressUnavailable

log = logging.getLogger(__name__)

MAX_BODY_LENGTH = 5000
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
# The partner picker lists at most this many users. A program with thousands of
# clients would otherwise make the list, and the WordPress name lookup, too long.
MAX_PARTNERS = 500
# Ids above this do not fit the BIGINT columns and cannot exist.
MAX_ID = 2**63 - 1

COACH = "coach"
CLIENT = "client"


class Forbidden(CoachbridgeError):
    """Raised when the caller may see an object but not do what they requested."""

    status = 403
    code = "forbidden"


@dataclass(frozen=True)
class Partner:
    """A user the actor may message: their coach, or a client."""

    wp_user_id: int
    name: str
    relation: str


def messaging_enabled(runtime: Runtime) -> bool:
    """Return whether the site allows messaging (``coaching.messaging_enabled``)."""
    return runtime.config.coaching.messaging_enabled


def validate_body(body: object) -> str:
    """Return a message body if it is valid text, else raise InvalidRequest."""
    if not isinstance(body, str):
        raise InvalidRequest("invalid body: expected a string of message text")
    if not body.strip():
        raise InvalidRequest("missing body: the message is empty")
    if len(body) > MAX_BODY_LENGTH:
        raise InvalidRequest(
            f"invalid body: the message has {len(body)} characters and the "
            f"maximum is {MAX_BODY_LENGTH}; split it into several messages"
        )
    require_utf8(body, "body")
    return body


def require_utf8(text: str, field: str) -> str:
    """Return ``text`` unless it contains lone surrogates, which UTF-8 cannot store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(
            f"invalid {field}: the text contains unpaired UTF-16 surrogates"
        ) from None
    return text


def list_partners(runtime: Runtime, actor: Actor) -> list[Partner]:
    """List the users the actor may message, coaches first, then by name."""
    if not messaging_enabled(runtime):
        return []

    relations = runtime.db.run(
        lambda session: partner_relations(session, actor, MAX_PARTNERS),
        "list message partners",
    )
    names = user_names(runtime, relations.keys())
    partners = [
        Partner(user_id, names[user_id], relation)
        for user_id, relation in relations.items()
    ]
    partners.sort(key=lambda partner: (partner.relation != COACH, partner.name))
    return partners


def partner_relations(session: Session, actor: Actor, limit: int) -> dict[int, str]:
    """Map at most ``limit`` partner user ids onto their relation to the actor."""
    relations: dict[int, str] = {}
    for user_id in session.scalars(_my_coaches(actor.wp_user_id)):
        relations[user_id] = COACH

    client_queries = [_fellow_clients(actor.wp_user_id)]
    if actor.coach_id is not None:
        client_queries.append(_clients_of_coach(actor.coach_id))
    for query in client_queries:
        for user_id in session.scalars(query.limit(limit)):
            relations.setdefault(user_id, CLIENT)

    relations.pop(actor.wp_user_id, None)
    return dict(list(relations.items())[:limit])


def _active_in_messaging_program() -> list[sa.ColumnElement[bool]]:
    return [
        Enrollment.status == EnrollmentStatus.ACTIVE,
        Program.messaging_enabled.is_(True),
    ]


def _my_coaches(user_id: int) -> sa.Select:
    return (
        sa.select(Coach.wp_user_id)
        .distinct()
        .join(Cohort, Cohort.coach_id == Coach.id)
        .join(Enrollment, Enrollment.cohort_id == Cohort.id)
        .join(Program, Program.id == Enrollment.program_id)
        .where(Enrollment.wp_user_id == user_id, *_active_in_messaging_program())
    )


def _fellow_clients(user_id: int) -> sa.Select:
    mine = aliased(Enrollment)
    return (
        sa.select(Enrollment.wp_user_id)
        .distinct()
        .join(mine, mine.program_id == Enrollment.program_id)
        .join(Program, Program.id == Enrollment.program_id)
        .where(
            mine.wp_user_id == user_id,
            mine.status == EnrollmentStatus.ACTIVE,
            Enrollment.wp_user_id != user_id,
            *_active_in_messaging_program(),
        )
        .order_by(Enrollment.wp_user_id)
    )


def _clients_of_coach(coach_id: int) -> sa.Select:
    return (
        sa.select(Enrollment.wp_user_id)
        .distinct()
        .join(Cohort, Cohort.id == Enrollment.cohort_id)
        .join(Program, Program.id == Enrollment.program_id)
        .where(Cohort.coach_id == coach_id, *_active_in_messaging_program())
        .order_by(Enrollment.wp_user_id)
    )


def can_message(session: Session, actor: Actor, other_user_id: int) -> bool:
    """Return whether the actor and another user may message each other now.

    The site-wide switch is not checked here; see ``messaging_enabled``.
    """
    return other_user_id in messageable_among(session, actor, [other_user_id])


def messageable_among(
    session: Session, actor: Actor, user_ids: Iterable[int]
) -> set[int]:
    """Return the users among ``user_ids`` that the actor may message now."""
    candidates = set(user_ids) - {actor.wp_user_id}
    if not candidates:
        return set()

    queries = [
        _my_coaches(actor.wp_user_id).where(Coach.wp_user_id.in_(candidates)),
        _fellow_clients(actor.wp_user_id).where(Enrollment.wp_user_id.in_(candidates)),
    ]
    if actor.coach_id is not None:
        queries.append(
            _clients_of_coach(actor.coach_id).where(
                Enrollment.wp_user_id.in_(candidates)
            )
        )
    allowed: set[int] = set()
    for query in queries:
        allowed.update(session.scalars(query))
    return allowed


def user_names(runtime: Runtime, user_ids: Iterable[int]) -> dict[int, str]:
    """Map user ids onto WordPress display names, with a placeholder for deleted users.

    Raises Unavailable when the WordPress database cannot be reached.
    """
    wanted = set(user_ids)
    if not wanted:
        return {}
    try:
        users = runtime.wordpress.users(wanted)
    except WordPressUnavailable as error:
        raise Unavailable(
            "cannot read user names: the WordPress database is unavailable; try "
            "again in a few minutes"
        ) from error
    return {
        user_id: users[user_id].display_name if user_id in users else "Former member"
        for user_id in wanted
    }


def list_conversations(runtime: Runtime, actor: Actor) -> list[dict[str, Any]]:
    """List the actor's conversations, most recent message first."""
    rows = runtime.db.run(
        lambda session: _conversation_rows(session, actor),
        "list conversations",
    )
    names = user_names(runtime, [partner_id for _, partner_id, _, _, _ in rows])
    enabled = messaging_enabled(runtime)
    return [
        conversation_json(conversation, partner_id, names[partner_id], last, unread)
        | {"can_send": can_send and enabled}
        for conversation, partner_id, last, unread, can_send in rows
    ]


def _conversation_rows(
    session: Session, actor: Actor
) -> list[tuple[Conversation, int, Message | None, int, bool]]:
    me = actor.wp_user_id
    conversations = session.scalars(
        sa.select(Conversation)
        .where(sa.or_(Conversation.user_low_id == me, Conversation.user_high_id == me))
        .order_by(
            Conversation.last_message_id.is_(None),
            Conversation.last_message_id.desc(),
            Conversation.id.desc(),
        )
    ).all()
    last_ids = [c.last_message_id for c in conversations if c.last_message_id]
    last_messages = {
        message.id: message
        for message in session.scalars(
            sa.select(Message).where(Message.id.in_(last_ids))
        )
    }
    unread = _unread_counts(session, me, conversations)
    partner_ids = [other_participant(c, me) for c in conversations]
    allowed = messageable_among(session, actor, partner_ids)

    rows = []
    for conversation, partner_id in zip(conversations, partner_ids, strict=True):
        last = last_messages.get(conversation.last_message_id or 0)
        can_send = partner_id in allowed
        rows.append((conversation, partner_id, last, unread[conversation.id], can_send))
    return rows


def _unread_counts(
    session: Session, me: int, conversations: Iterable[Conversation]
) -> dict[int, int]:
    counts = {conversation.id: 0 for conversation in conversations}
    unread_conditions = [
        sa.and_(Message.conversation_id == c.id, Message.id > last_read_id(c, me))
        for c in conversations
        if (c.last_message_id or 0) > last_read_id(c, me)
    ]
    if not unread_conditions:
        return counts

    query = (
        sa.select(Message.conversation_id, sa.func.count())
        .where(sa.or_(*unread_conditions), Message.sender_wp_user_id != me)
        .group_by(Message.conversation_id)
    )
    for conversation_id, count in session.execute(query):
        counts[conversation_id] = count
    return counts


def unread_total(session: Session, me: int) -> int:
    """Count the messages sent to ``me`` that ``me`` has not read yet."""
    unread = sa.or_(
        sa.and_(
            Conversation.user_low_id == me,
            Message.id > Conversation.low_last_read_id,
        ),
        sa.and_(
            Conversation.user_high_id == me,
            Message.id > Conversation.high_last_read_id,
        ),
    )
    query = (
        sa.select(sa.func.count())
        .select_from(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            sa.or_(Conversation.user_low_id == me, Conversation.user_high_id == me),
            Message.sender_wp_user_id != me,
            unread,
        )
    )
    return session.scalar(query) or 0


def other_participant(conversation: Conversation, me: int) -> int:
    """Return the user id of the participant who is not ``me``."""
    if conversation.user_low_id == me:
        return conversation.user_high_id
    return conversation.user_low_id


def last_read_id(conversation: Conversation, me: int) -> int:
    """Return the id of the last message ``me`` has read in the conversation."""
    if conversation.user_low_id == me:
        return conversation.low_last_read_id
    return conversation.high_last_read_id


def load_conversation(
    session: Session, actor: Actor, conversation_id: int
) -> Conversation:
    """Return a conversation the actor takes part in, or raise NotFound."""
    conversation = None
    if 0 < conversation_id <= MAX_ID:
        conversation = session.get(Conversation, conversation_id)
    me = actor.wp_user_id
    if conversation is None or me not in (
        conversation.user_low_id,
        conversation.user_high_id,
    ):
        raise NotFound(f"conversation {conversation_id} not found")
    return conversation


def read_messages(
    runtime: Runtime,
    actor: Actor,
    conversation_id: int,
    before: int | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> dict[str, Any]:
    """Return a page of messages, oldest first, and mark the conversation read.

    The page contains the newest ``limit`` messages with an id below ``before``
    (all messages when None).
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidRequest(
            f"invalid limit {limit}: expected 1 to {MAX_PAGE_SIZE} messages"
        )
    if before is not None and not 1 <= before <= MAX_ID:
        raise InvalidRequest(f"invalid before {before}: expected a message id")

    def work(session: Session) -> tuple[Conversation, list[Message], bool, bool]:
        conversation = load_conversation(session, actor, conversation_id)
        messages, has_more = _message_page(session, conversation.id, before, limit)
        _mark_read(conversation, actor.wp_user_id)
        partner_id = other_participant(conversation, actor.wp_user_id)
        allowed = can_message(session, actor, partner_id)
        return conversation, messages, has_more, allowed

    conversation, messages, has_more, allowed = runtime.db.run(work, "read messages")
    partner_id = other_participant(conversation, actor.wp_user_id)
    name = user_names(runtime, [partner_id])[partner_id]
    return {
        "conversation": conversation_json(conversation, partner_id, name, None, 0)
        | {"can_send": allowed and messaging_enabled(runtime)},
        "messages": [message_json(message, actor.wp_user_id) for message in messages],
        "has_more": has_more,
    }


def _message_page(
    session: Session, conversation_id: int, before: int | None, limit: int
) -> tuple[list[Message], bool]:
    query = sa.select(Message).where(Message.conversation_id == conversation_id)
    if before is not None:
        query = query.where(Message.id < before)
    newest_first = session.scalars(
        query.order_by(Message.id.desc()).limit(limit + 1)
    ).all()
    has_more = len(newest_first) > limit
    return list(reversed(newest_first[:limit])), has_more


def _mark_read(conversation: Conversation, me: int) -> None:
    latest = conversation.last_message_id or 0
    if conversation.user_low_id == me:
        conversation.low_last_read_id = max(conversation.low_last_read_id, latest)
    else:
        conversation.high_last_read_id = max(conversation.high_last_read_id, latest)


def start_conversation(
    runtime: Runtime, actor: Actor, partner_id: int
) -> tuple[dict[str, Any], bool]:
    """Return the conversation with a partner, creating it if needed.

    Returns the conversation and whether it was created. Raises Forbidden when
    messaging is disabled or the two users may not message each other.
    """
    if partner_id == actor.wp_user_id:
        raise InvalidRequest("invalid partner_id: you cannot message yourself")
    _require_messaging(runtime)

    def work(session: Session) -> tuple[Conversation, bool]:
        if not can_message(session, actor, partner_id):
            raise _not_a_partner(partner_id)
        return _get_or_create(session, actor.wp_user_id, partner_id)

    try:
        conversation, created = runtime.db.run(work, "start a conversation")
    except sa.exc.IntegrityError:
        # The partner created the same conversation at the same moment, so the
        # second attempt finds it.
        conversation, created = runtime.db.run(work, "start a conversation")
    if created:
        log.info(
            "user %s started conversation %s with user %s",
            actor.wp_user_id,
            conversation.id,
            partner_id,
        )
    name = user_names(runtime, [partner_id])[partner_id]
    body = conversation_json(conversation, partner_id, name, None, 0)
    return body | {"can_send": True}, created


def _get_or_create(
    session: Session, me: int, partner_id: int
) -> tuple[Conversation, bool]:
    low, high = sorted((me, partner_id))
    existing = session.scalar(
        sa.select(Conversation).where(
            Conversation.user_low_id == low, Conversation.user_high_id == high
        )
    )
    if existing is not None:
        return existing, False
    conversation = Conversation(user_low_id=low, user_high_id=high)
    session.add(conversation)
    session.flush()
    return conversation, True


def send_message(
    runtime: Runtime, actor: Actor, conversation_id: int, body: object
) -> dict[str, Any]:
    """Store a message from the actor and write a ``message_sent`` activity entry.

    Raises NotFound for a conversation the actor is not part of, Forbidden when
    messaging is disabled or the two users may no longer message each other, and
    InvalidRequest for an invalid body.
    """
    text = validate_body(body)
    _require_messaging(runtime)
    now = naive_utc(runtime.now())

    def work(session: Session) -> Message:
        conversation = load_conversation(session, actor, conversation_id)
        recipient = other_participant(conversation, actor.wp_user_id)
        if not can_message(session, actor, recipient):
            raise _not_a_partner(recipient)

        message = Message(
            conversation_id=conversation.id,
            sender_wp_user_id=actor.wp_user_id,
            body=text,
            sent_at=now,
        )
        session.add(message)
        session.flush()
        conversation.last_message_id = message.id
        conversation.last_message_at = now
        _mark_read(conversation, actor.wp_user_id)
        _record_sent(session, actor, recipient, conversation, message)
        return message

    message = runtime.db.run(work, "send a message")
    log.info(
        "user %s sent message %s in conversation %s",
        actor.wp_user_id,
        message.id,
        conversation_id,
    )
    return message_json(message, actor.wp_user_id)


def _record_sent(
    session: Session,
    actor: Actor,
    recipient: int,
    conversation: Conversation,
    message: Message,
) -> None:
    activity.record(
        session,
        ActivityType.MESSAGE_SENT,
        **_activity_subject(session, actor.wp_user_id, recipient),
        actor_wp_user_id=actor.wp_user_id,
        summary="Sent a message",
        details={
            "conversation_id": conversation.id,
            "message_id": message.id,
            "recipient_wp_user_id": recipient,
        },
        occurred_at=message.sent_at,
    )


def _activity_subject(session: Session, sender: int, recipient: int) -> dict[str, Any]:
    """Name the client, program, cohort and coach a message belongs to.

    Between a coach and a client the entry is about the client's enrollment in
    the coach's cohort. Between two clients it is about the sender, in the first
    program they share.
    """
    coached = session.execute(
        sa.select(Enrollment, Cohort.coach_id)
        .join(Cohort, Cohort.id == Enrollment.cohort_id)
        .join(Coach, Coach.id == Cohort.coach_id)
        .where(
            Enrollment.status == EnrollmentStatus.ACTIVE,
            sa.or_(
                sa.and_(Enrollment.wp_user_id == sender, Coach.wp_user_id == recipient),
                sa.and_(Enrollment.wp_user_id == recipient, Coach.wp_user_id == sender),
            ),
        )
        .order_by(Enrollment.id)
        .limit(1)
    ).first()
    if coached is not None:
        enrollment, coach_id = coached
        return {
            "wp_user_id": enrollment.wp_user_id,
            "program_id": enrollment.program_id,
            "cohort_id": enrollment.cohort_id,
            "coach_id": coach_id,
            "enrollment_id": enrollment.id,
        }

    shared_program = session.scalar(
        _fellow_clients(sender)
        .with_only_columns(Enrollment.program_id)
        .where(Enrollment.wp_user_id == recipient)
        .order_by(None)
        .order_by(Enrollment.program_id)
        .limit(1)
    )
    return {
        "wp_user_id": sender,
        "program_id": shared_program,
        "cohort_id": None,
        "coach_id": None,
        "enrollment_id": None,
    }


def _require_messaging(runtime: Runtime) -> None:
    if not messaging_enabled(runtime):
        raise Forbidden(
            "messaging is disabled on this site; an administrator can enable it "
            "with coaching.messaging_enabled"
        )


def _not_a_partner(user_id: int) -> Forbidden:
    return Forbidden(
        f"you cannot message user {user_id}: messages are possible between a "
        "coach and the clients of their cohorts, and between clients of the same "
        "program, while the program has messaging enabled"
    )


def conversation_json(
    conversation: Conversation,
    partner_id: int,
    partner_name: str,
    last: Message | None,
    unread: int,
) -> dict[str, Any]:
    """Describe a conversation as the API returns it."""
    return {
        "id": conversation.id,
        "partner": {"id": partner_id, "name": partner_name},
        "last_message": message_json(last, None) if last is not None else None,
        "unread_count": unread,
    }


def message_json(message: Message, me: int | None) -> dict[str, Any]:
    """Describe a message as the API returns it; ``me`` None makes ``mine`` False."""
    return {
        "id": message.id,
        "sender_id": message.sender_wp_user_id,
        "mine": message.sender_wp_user_id == me,
        "body": message.body,
        "sent_at": iso_utc(message.sent_at),
    }


def iso_utc(instant: dt.datetime) -> str:
    """Format a naive UTC instant as ISO 8601 with a ``Z`` suffix."""
    return instant.replace(microsecond=0).isoformat() + "Z"


def naive_utc(instant: dt.datetime) -> dt.datetime:
    """Convert an aware instant to the naive UTC form the tables store."""
    return instant.astimezone(dt.UTC).replace(tzinfo=None)
