"""The Gradio chat UI: chat with the agent over editable reference notes, rate its replies.

Thin by design: validation, prompt building, streaming, ask/answer labelling and
logging live in ``agent.chat_service.ChatService``; ratings go straight to the
``LogStore`` (which validates them). The handlers are plain methods of
``ChatHandlers`` so tests can call them without a browser.

Per browser session, a ``ChatSession`` (gr.State, server-side) holds the
conversation id, the notes it was started with, the messages shown, and which
chatbot message index is which logged turn. The client never sends turn ids:
ratings are resolved through this server-side mapping.

Every event with a Python function is an HTTP endpoint (see docs/NOTES on
Gradio): handlers re-validate everything and trust nothing from the client.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import gradio as gr

from agent.chat_service import DEFAULT_NOTES, ChatService, clean_text
from agent.engine import EngineError
from clarify.settings import Settings
from logs_db.store import LogError, LogStore

log = logging.getLogger(__name__)

# Events of one kind running at once (the rest wait in Gradio's queue). Both engines batch concurrent replies (the
# transformers engine up to 8 per generate call, agent/batching.py; vLLM any number), so a limit below the batch
# only makes users queue in front of an idle batch slot; the bound keeps worker threads few.
CONCURRENCY_LIMIT = 16
QUEUE_MAX_SIZE = 64

TRAINING_NOTE = (
    "Your ratings teach the agent: rated conversations are used to fine-tune it. "
    "**Conversations you do not rate are not used for training.**"
)
EMPTY_RATING_TARGET = "There is no agent reply to rate yet: send a message first."
NOT_RATABLE = "Only the agent's replies in this conversation can be rated."
RATE_HINT = "Rate this reply: thumbs up / down under the message, or stars on the right."

CSS = """
#status p { margin: 0.25rem 0; }
#status .error { color: var(--error-text-color, #b91c1c); font-weight: 600; }
#send { align-self: stretch; }
#answering p { margin: 0; font-size: 0.85rem; opacity: 0.8; }
.error { color: var(--error-text-color, #b91c1c); font-weight: 600; }
.train-progress progress { height: 1rem; }
"""


@dataclass
class ChatSession:
    """Server-side state of one browser session."""

    conversation_id: str | None = None
    notes: str | None = None                                # cleaned notes the conversation started with
    messages: list[dict] = field(default_factory=list)      # what the chatbot shows
    turns: dict[int, str] = field(default_factory=dict)     # chatbot message index -> rateable turn id
    last_turn_id: str | None = None                         # the last successful agent reply

    def copy(self) -> "ChatSession":
        return replace(self, messages=list(self.messages), turns=dict(self.turns))


def message_text(content: Any) -> str:
    """Text of a chat message content: a string, a list of parts ({"type": "text", "text": ...}), or nested."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        if "text" in content:
            return str(content.get("text") or "")
        if "content" in content:
            return message_text(content["content"])
        return ""  # files, components: no text
    if isinstance(content, (list, tuple)):
        return "\n".join(t for t in (message_text(part) for part in content) if t)
    return str(content)


def _same_text(a: str, b: str) -> bool:
    squash = lambda s: re.sub(r"\s+", " ", s).strip()  # noqa: E731
    return squash(a) == squash(b)


def error_status(message: Any) -> str:
    return f'<span class="error">Error: {_escape(str(message))}</span>'


def info_status(message: str) -> str:
    return _escape(message)


def _escape(text: str) -> str:
    # Status lines may quote user input (e.g. a bad star value): never let it become markup.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def answering_text(adapter_id: str | None, activated_at=None) -> str:
    """The Chat tab's line "Answering: base model" or "Answering: adapter `ID` (activated 2026-12-07 14:02)"
    ("never activated" for a candidate that answers without ever having been active: an A/B arm B)."""
    if adapter_id is None:
        return "Answering: base model"
    when = f"activated {str(activated_at)[:16]}" if activated_at is not None else "never activated"
    return f"Answering: adapter `{adapter_id}` ({when})"


def _user_id(request: gr.Request | None) -> str | None:
    return getattr(request, "username", None) if request is not None else None


def _parse_stars(stars: Any) -> int:
    if stars is None or (isinstance(stars, str) and not stars.strip()):
        raise LogError("Choose 1 to 5 stars first.")
    if isinstance(stars, bool):
        raise LogError(f"A star rating must be a whole number from 1 to 5, got {stars!r}.")
    if isinstance(stars, str):
        try:
            stars = float(stars.strip())
        except ValueError:
            raise LogError(f"A star rating must be a whole number from 1 to 5, got {stars!r}.") from None
    if not isinstance(stars, (int, float)) or stars != stars or not float(stars).is_integer():
        raise LogError(f"A star rating must be a whole number from 1 to 5, got {stars!r}.")
    return int(stars)  # range checked by the store (normalized_reward)


class ChatHandlers:
    """The event handlers of the Chat tab."""

    def __init__(self, settings: Settings, store: LogStore, service: ChatService):
        self.settings = settings
        self.store = store
        self.service = service

    # -- chatting -------------------------------------------------------------
    def send(self, message: str, notes: str, session: ChatSession | None,
             request: gr.Request = None) -> Iterator[tuple]:
        """Stream one exchange. Yields (message box, send button, chatbot, session, status)."""
        session = session.copy() if session is not None else ChatSession()
        user = _user_id(request)
        keep = gr.skip()
        try:
            text = self.service.validate_message(message)
        except LogError as exc:  # nothing sent, nothing logged; the message stays in the box to fix
            yield keep, keep, session.messages, session, error_status(exc)
            return

        notice = ""
        notes_now = clean_text(notes or "")
        if session.conversation_id is None or notes_now != session.notes:
            try:
                cid = self.service.start(notes or "", opening=text, user_id=user)
            except LogError as exc:
                yield keep, keep, session.messages, session, error_status(exc)
                return
            if session.conversation_id is not None:
                notice = "The reference notes changed, so a new conversation started. "
            session = ChatSession(conversation_id=cid, notes=notes_now)

        try:
            reply = self.service.reply(session.conversation_id, text, user_id=user)
        except LogError as exc:
            yield keep, keep, session.messages, session, error_status(exc)
            return

        history = session.messages + [{"role": "user", "content": text}, {"role": "assistant", "content": ""}]
        session.messages = history
        busy, ready = gr.update(value="", interactive=False), gr.update(interactive=True)
        yield busy, gr.update(interactive=False), list(history), session, info_status(notice + "The agent is replying…")
        pieces = iter(reply)
        try:
            for partial in pieces:
                history[-1] = {"role": "assistant", "content": partial}
                yield keep, keep, list(history), session, keep
        except GeneratorExit:  # the browser went away: stop the stream now (the service logs it as failed)
            pieces.close()
            raise
        except EngineError as exc:
            # The service has logged the turn as failed; it is shown, but cannot be rated.
            history[-1] = {"role": "assistant", "content": f"(No reply: {exc})"}
            session.last_turn_id = None
            yield ready, ready, list(history), session, error_status(
                f"The agent failed: {exc} The failed turn was logged; there is nothing to rate.")
            return
        except Exception as exc:  # never leave the message box disabled
            log.exception("chat reply failed")
            history[-1] = {"role": "assistant", "content": "(No reply.)"}
            session.last_turn_id = None
            yield ready, ready, list(history), session, error_status(f"Something went wrong: {exc}")
            return
        history[-1] = {"role": "assistant", "content": reply.text}
        session.turns[len(history) - 1] = reply.turn_id
        session.last_turn_id = reply.turn_id
        yield ready, ready, list(history), session, info_status(notice + RATE_HINT)

    def new_conversation(self, session: ChatSession | None = None) -> tuple:
        """Forget the current conversation; the next message starts a new one (nothing logged until then)."""
        return ([], ChatSession(), info_status("New conversation: your next message starts it."),
                gr.update(value=None), gr.update(value=""))

    def answering(self, session: ChatSession | None = None) -> str:
        """The line next to the chat: which adapter answers. In a conversation, the one that wrote its last agent
        reply, as that turn records it (conversations keep the adapter they started with, so after a promotion
        it may no longer be the active one: the line then says what new conversations use); before a
        conversation, the active adapter a new one starts with (and the A/B candidate, when a split is on)."""
        session = session or ChatSession()
        active = self.store.active_adapter()
        active_id = active.id if active is not None else None
        adapter_id, note = active_id, ""
        if session.conversation_id is not None:
            try:
                adapter_id = self.store.answering_adapter(session.conversation_id)
            except LogError:  # a conversation not (or no longer) in the log: say what a new one uses
                adapter_id = active_id
            else:
                if adapter_id != active_id:
                    note = " · new conversations use " + (f"`{active_id}`" if active_id else "the base model")
        else:
            candidate, share = self.service.ab_state() if self.service is not None else (None, 0.0)
            if candidate is not None and candidate != active_id and share > 0:
                note = f" · A/B on: `{candidate}` answers {share:.0%} of new conversations"
        activation = self.store.last_activation(adapter_id) if adapter_id is not None else None
        return answering_text(adapter_id, activation.created_at if activation else None) + note

    # -- rating ---------------------------------------------------------------
    def _rate(self, turn_id: str, *, kind: str, value: Any, comment: str | None, request) -> None:
        self.store.add_rating(turn_id, kind=kind, value=value, comment=comment, user_id=_user_id(request))

    def like(self, session: ChatSession | None, data: gr.LikeData, request: gr.Request = None) -> str:
        """Thumbs up / down on a chatbot message -> a thumbs rating of that turn."""
        session = session or ChatSession()
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        if data.liked is True:
            value = 1
        elif data.liked is False:
            value = 0
        elif data.liked in ("", None):
            return info_status("A recorded rating is kept; click thumbs up or down again to add another.")
        else:
            return error_status(f"Unknown feedback {data.liked!r}; use thumbs up or down.")
        turn_id = session.turns.get(index) if isinstance(index, int) else None
        if turn_id is None:
            return error_status(NOT_RATABLE if session.messages else EMPTY_RATING_TARGET)
        try:
            shown = message_text(data.value)
            if shown and not _same_text(shown, self.store.get_turn(turn_id).text):
                return error_status("That message does not match the logged reply; nothing was recorded.")
            self._rate(turn_id, kind="thumbs", value=value, comment=None, request=request)
        except LogError as exc:
            return error_status(exc)
        return info_status(("Thumbs up" if value else "Thumbs down") + " recorded. Thank you!")

    def rate_last(self, session: ChatSession | None, stars: Any, comment: str | None,
                  request: gr.Request = None) -> tuple:
        """1-5 stars (+ optional comment) on the last agent reply. Returns (status, stars, comment)."""
        session = session or ChatSession()
        keep = gr.skip()
        if session.last_turn_id is None:
            return error_status(EMPTY_RATING_TARGET), keep, keep
        try:
            value = _parse_stars(stars)
            if comment is not None and not isinstance(comment, str):
                raise LogError("A comment must be text.")
            note = clean_text(comment or "") or None
            self._rate(session.last_turn_id, kind="stars", value=value, comment=note, request=request)
        except LogError as exc:
            return error_status(exc), keep, keep
        return info_status(f"{value} ★ recorded for the last answer. Thank you!"), gr.update(value=None), gr.update(value="")


def build_app(settings: Settings, store: LogStore, service: ChatService, *, manager=None, scheduler=None,
              access=None) -> gr.Blocks:
    """The whole UI. Launch with ``launch_kwargs()`` (theme and CSS live on launch() in Gradio 6).

    `manager` (learner.training_service.TrainingManager) runs training and the promotion gate, `scheduler`
    (learner.scheduler.Scheduler) is shown in the Training tab, `access` (ui.access.Access) decides
    who may use the admin actions (everyone when no auth is configured).
    """
    from learner.training_service import TrainingManager

    from .access import Access
    from .adapters_tab import AdaptersHandlers, build_adapters_tab
    from .insights_tab import InsightsHandlers, build_insights_tab
    from .training_tab import TrainingHandlers, build_training_tab

    h = ChatHandlers(settings, store, service)
    access = access or Access.from_settings(settings)
    manager = manager or TrainingManager(settings, store, getattr(service, "engine", None))
    training_h = TrainingHandlers(settings, store, manager, scheduler, access)
    adapters_h = AdaptersHandlers(settings, store, service, manager, access)
    insights_h = InsightsHandlers(settings, store, access)
    private = dict(api_visibility="private")

    with gr.Blocks(title="clarify") as demo:
        gr.Markdown("## clarify\nA chat agent that answers from your reference notes and asks a clarifying "
                    "question when your question could mean more than one thing.")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Chat", id="chat") as chat_tab:
                session = gr.State(ChatSession())
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=360):
                        chatbot = gr.Chatbot(
                            label="Conversation", elem_id="chatbot", height=440,
                            latex_delimiters=[],  # prices like "$3 ... $4" are not LaTeX
                            buttons=["copy", "copy_all"],
                            placeholder="Ask a question about the reference notes.",
                        )
                        answering = gr.Markdown("", elem_id="answering")
                        with gr.Row(equal_height=True):
                            message = gr.Textbox(
                                show_label=False, placeholder="Your question… (Enter to send)",
                                lines=1, max_lines=6, scale=5, elem_id="message", autofocus=True,
                            )
                            send = gr.Button("Send", variant="primary", scale=1, min_width=90, elem_id="send")
                        with gr.Row(equal_height=True):
                            status = gr.Markdown("", elem_id="status")
                            new = gr.Button("New conversation", size="sm", scale=0, min_width=170,
                                            elem_id="new-conversation")
                    with gr.Column(scale=2, min_width=300):
                        notes = gr.Textbox(
                            DEFAULT_NOTES, label="Reference notes", lines=5, max_lines=14, elem_id="notes",
                            info="The agent answers from these notes only. Editing them starts a new "
                                 "conversation with your next message.",
                        )
                        with gr.Group():
                            stars = gr.Radio(
                                choices=[(f"{i} ★", i) for i in range(1, 6)], label="Rate the last answer",
                                info="1 = poor, 5 = great", elem_id="stars",
                            )
                            comment = gr.Textbox(label="Comment (optional)", lines=2, max_lines=6,
                                                 elem_id="rating-comment")
                        rate = gr.Button("Rate last answer", elem_id="rate")
                        gr.Markdown(TRAINING_NOTE, elem_id="training-note")
            with gr.Tab("Training", id="training"):
                training = build_training_tab(training_h)
            with gr.Tab("Adapters", id="adapters") as adapters_tab:
                adapters = build_adapters_tab(adapters_h)
            with gr.Tab("Insights", id="insights") as insights_tab:
                insights = build_insights_tab(insights_h)

        send_io = dict(fn=h.send, inputs=[message, notes, session],
                       outputs=[message, send, chatbot, session, status],
                       show_progress="minimal", trigger_mode="once", **private)
        # Which adapter answers: after each reply, a reset, a page load, and on coming back to the Chat tab.
        answering_io = dict(fn=h.answering, inputs=[session], outputs=[answering], show_progress="hidden", **private)
        message.submit(**send_io).then(**answering_io)
        send.click(**send_io).then(**answering_io)
        reset_io = dict(fn=h.new_conversation, inputs=[session], outputs=[chatbot, session, status, stars, comment],
                        show_progress="hidden", **private)
        new.click(**reset_io).then(**answering_io)
        chatbot.clear(**reset_io).then(**answering_io)  # the chatbot's own trash button: same as "New conversation"
        chat_tab.select(**answering_io)
        chatbot.like(h.like, inputs=[session], outputs=[status], show_progress="hidden", **private)
        rate.click(h.rate_last, inputs=[session, stars, comment], outputs=[status, stars, comment],
                   show_progress="hidden", **private)

        # A page (re)load picks up a training run in progress; the other tabs read the log when opened.
        demo.load(training["load_fn"], outputs=training["load_outputs"], show_progress="hidden", **private)
        demo.load(**answering_io)
        adapters_tab.select(adapters["refresh_fn"], outputs=adapters["refresh_outputs"], show_progress="hidden",
                            **private)
        insights_tab.select(insights["refresh_fn"], inputs=insights["refresh_inputs"],
                            outputs=insights["refresh_outputs"], show_progress="hidden", **private)

    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE)
    return demo


def launch_kwargs(access=None, mounts: dict | None = None) -> dict:
    """Look and hardening options for ``demo.launch`` (shared by `clarify serve` and tests).

    `access` (ui.access.Access) is enforced on the HTTP routes by AdminGuard: admin events answer 401/403 to
    anyone but an admin, whatever the client sends. `mounts` ({path: ASGI app}, e.g. {"/v1": the API of
    api/app.py}) are served by the same server, ahead of Gradio's own routes (launch keeps its port handling).
    """
    from starlette.middleware import Middleware
    from starlette.routing import Mount

    from .access import Access, AdminGuard

    app_kwargs = {"middleware": [Middleware(AdminGuard, access=access or Access())],
                  "routes": [Mount(path, app=sub_app) for path, sub_app in (mounts or {}).items()]}
    return dict(css=CSS, theme=gr.themes.Soft(), ssr_mode=False, show_error=False,
                footer_links=["gradio", "settings"], max_file_size="1mb", app_kwargs=app_kwargs)
