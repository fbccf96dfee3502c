"""Simulated users: run conversations between the agent and a user with a hidden intent, grade and log them.

For each item the user draws one interpretation as its hidden intent (seeded by
item id, conversation index and seed through SHA-256, so it is stable across
runs and processes). The user opens with the item's question. When the agent
asks a clarifying question, the user answers the question that was asked
(agent/user_reply.py): the intent's ``clarification`` when the question names
the options (words that tell the interpretations apart: "the Harbor or the
Station branch?"), after "Yes, " when it names the intended option only and
"No, " when it names only others, and an unhelpful reply ("What I asked.",
"Yes, the espresso.") when it names none, so a vague question costs its turn
and leaves the agent to answer without the clarification. Whether each
question named the options is in the conversation's meta. The first turn that
is not a question is the final answer, and after ``horizon`` questions the
next agent turn is final whatever it is.

Exploration: the base model almost never asks, so for ``ask_first`` of the
``per_item`` conversations the behaviour policy is forced to ask first: its
first reply starts with a fixed prefix ("Do you mean"), the model
completes it, and the reply is cut after its first question mark (a stop
string; the kept text is exactly what is logged as the agent's turn). Every
prompt comes from ``agent.policy.build_prompt``: the prefix is the only thing
that differs from serving, and it is recorded in the conversation's meta.
With ``extractive_answers`` the behaviour policy is scripted from what the agent
sees: answers are the note sentence closest to the user's words
(``extractive_answer``) and a forced question names the note facts that match
the question (``extractive_question``).

Serving exploration (``explore``, Settings.explore for ``clarify simulate``): on every agent turn that may ask and
is not forced, the policy takes the action its decision did not choose with that probability, as the Chat tab does
(agent/decision.py ``Exploration``; the draw is seeded by item, conversation and turn), and the turn records its
P(ask), action, propensity and whether it explored. The evaluation never explores.

Conversations run in lockstep: each round generates the next agent turn of
every pending conversation in batched ``engine.generate_batch`` calls, then
the users reply, and only the conversations still open go to the next round.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Sequence

from .decision import Exploration, may_ask
from .engine import Engine, GenerationParams
from .grader import conversation_reward, grade_answer
from .items import Item
from .extractive import extractive_answer, extractive_question  # noqa: F401 (re-exported)
from .policy import ASK_PREFIXES, Message, build_prompt, classify_agent_turn, must_answer  # noqa: F401 (re-export)
from .seeding import stable_int  # noqa: F401 (re-exported)
from .sim_summary import asks_named_options, summarize  # noqa: F401 (re-exported)
from .user_reply import user_reply

# One opening for every forced question: the greedy ask-or-answer decision is then one first token
# ("Do") instead of probability mass split over four openings that each lose to the answer's first
# token (docs/LEARNING.md).
SOURCE = "simulated"
RETRY_TEMPERATURE = 0.8
DEFAULT_CHUNK = 16
_FIRST_QUESTION = re.compile(r"^.*?\?[\"'\u201d\u2019)\]]*", re.DOTALL)


def draw_intent(item: Item, index: int, seed: int) -> int:
    """The hidden intent of conversation `index` about `item`: an interpretation index.

    Stratified: conversation 0 draws a seeded random reading and conversation j takes the j-th one
    after it, so the M conversations of an item cover its readings evenly instead of by chance.
    Offline RL compares trajectories of the same item (Swift); with M = 3 random draws, two direct
    guesses often met the same lucky intent and made asking look worse than guessing.
    """
    n = len(item.interpretations)
    return (stable_int("intent", seed, item.id, 0) + index) % n


def ask_prefix(item: Item, index: int, seed: int) -> str:
    return ASK_PREFIXES[stable_int("prefix", seed, item.id, index) % len(ASK_PREFIXES)]


def cut_after_first_question(text: str) -> str:
    """The stop string of a forced question: keep the text up to its first '?'."""
    match = _FIRST_QUESTION.match(text)
    return match.group().strip() if match else text


@dataclass
class SimTurn:
    role: str                      # user | assistant
    kind: str                      # user | ask | answer
    text: str
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reply: str | None = None       # a user's reply to a question: clarification | yes | no | unhelpful
    # The serving decision of an agent turn that explored (agent/decision.py Exploration); None otherwise.
    p_ask: float | None = None
    action: str | None = None
    propensity: float | None = None
    explored: bool | None = None


@dataclass
class SimulatedConversation:
    item: Item
    index: int                     # conversation number within its item
    intent: int                    # index into item.interpretations
    temperature: float
    forced_prefix: str | None
    adapter: str | None
    engine: str
    seed: int
    turns: list[SimTurn] = field(default_factory=list)
    hint_answers: bool = False     # behaviour: answer a clarification from the restated question
    answer_tries: int = 1          # behaviour: sample a wrong final answer again, up to this many times
    extractive: bool = False       # behaviour: answers come from extractive_answer, not the model
    explore: float = 0.0           # serving exploration rate of the turns that may ask
    tries: int = 0
    done: bool = False
    correct: bool = False
    reward: float = 0.0
    # Filled by log_conversations.
    conversation_id: str | None = None

    @property
    def messages(self) -> list[Message]:
        """The conversation as the policy sees it (what build_prompt takes)."""
        return [Message(t.role, t.text, t.kind) for t in self.turns]

    @property
    def agent_turns(self) -> list[SimTurn]:
        return [t for t in self.turns if t.role == "assistant"]

    @property
    def questions(self) -> int:
        """Clarifying questions the user answered (every agent turn before the final one)."""
        return max(0, len(self.agent_turns) - 1)

    @property
    def asked(self) -> bool:
        """The agent's first turn was a clarifying question."""
        turns = self.agent_turns
        return bool(turns) and turns[0].kind == "ask"

    @property
    def named_options(self) -> list[bool]:
        """Per clarifying question the user replied to: did it name the options (see agent/user_reply.py)."""
        return [t.reply != "unhelpful" for t in self.turns if t.reply is not None]

    @property
    def final_answer(self) -> str:
        turns = self.agent_turns
        return turns[-1].text if turns and self.done else ""

    def meta(self) -> dict:
        return {
            "temperature": self.temperature,
            "forced_prefix": self.forced_prefix,
            "hint_answers": self.hint_answers,
            "answer_tries": self.tries + 1,
            "extractive": self.extractive,
            "explore": self.explore,
            "intent": self.intent,
            "index": self.index,
            "seed": self.seed,
            "question": self.item.question,
            "ambiguous": self.item.ambiguous,
            "correct": self.correct,
            "questions": self.questions,
            "named_options": self.named_options,
            "user_replies": [t.reply for t in self.turns if t.reply is not None],
        }


def _progress(values, enabled: bool, desc: str, total: int | None = None):
    """A progress bar on stderr over `values` (or one updated by hand up to `total`)."""
    from tqdm import tqdm

    return tqdm(values, total=total, desc=desc, unit="conv", disable=not enabled, file=sys.stderr, leave=False,
                dynamic_ncols=True)


def _prompt_size(prompt: list[dict]) -> int:
    return sum(len(m["content"]) for m in prompt)


def behaviour_prompt(conv: SimulatedConversation, horizon: int) -> list[dict]:
    """The prompt the behaviour policy generates from.

    Normally the policy's own prompt. With `hint_answers`, the answer that
    follows a clarification is generated from the question restated with the
    clarification, which a small base model answers far better than the
    multi-turn form (it tends to echo the clarification). The *logged*
    conversation is unchanged, and the trainer rebuilds the normal prompt for
    it: offline RL allows any behaviour policy, and this one makes the data
    show what asking is worth when the follow-up answer is good.
    """
    if conv.hint_answers and conv.agent_turns and conv.turns[-1].role == "user":
        restated = f"{conv.item.question} ({conv.turns[-1].text})"
        return build_prompt(conv.item.context, [Message("user", restated, "user")], horizon)
    return build_prompt(conv.item.context, conv.messages, horizon)


def run_conversations(
    engine: Engine,
    items: Sequence[Item],
    *,
    per_item: int = 1,
    params: GenerationParams | None = None,
    temperatures: Sequence[float] | None = None,
    adapter: str | None = None,
    horizon: int = 1,
    question_cost: float = 0.1,
    seed: int = 0,
    ask_first: int = 0,
    hint_answers: bool = False,
    answer_tries: int = 1,
    extractive_answers: bool = False,
    explore: float = 0.0,
    progress: bool = True,
    desc: str = "simulate",
    chunk_size: int | None = DEFAULT_CHUNK,
) -> list[SimulatedConversation]:
    """Run `per_item` simulated conversations per item in lockstep batches, and grade them.

    `params` sets max_new_tokens/top_p (and the temperature unless
    `temperatures` is given: then conversation j of each item samples at
    temperatures[j % len(temperatures)], as Swift's several trajectories per
    context). Conversations j < `ask_first` of each item are forced to ask
    first. `explore`: the serving exploration rate (module docstring; 0 = none).
    `adapter` must already be loaded in the engine (None = base model).
    Each round's prompts go to the engine `chunk_size` at a time (None = all in
    one call): a multiple of the transformers engine's batch of 8 costs nothing
    and lets the progress bar move.
    """
    params = params or GenerationParams()
    if per_item < 1:
        raise ValueError(f"per_item must be at least 1, got {per_item}")
    if not 0 <= ask_first <= per_item:
        raise ValueError(f"ask_first must be between 0 and per_item ({per_item}), got {ask_first}")
    if horizon < 0:
        raise ValueError(f"horizon must be >= 0, got {horizon}")
    if not 0.0 <= explore <= 1.0:
        raise ValueError(f"explore must be between 0 and 1, got {explore}")
    temps = list(temperatures) if temperatures else [params.temperature]
    convs: list[SimulatedConversation] = []
    for item in items:
        for j in range(per_item):
            conv = SimulatedConversation(
                item=item, index=j, intent=draw_intent(item, j, seed), temperature=float(temps[j % len(temps)]),
                forced_prefix=ask_prefix(item, j, seed) if j < ask_first else None, hint_answers=hint_answers,
                answer_tries=answer_tries, extractive=extractive_answers, explore=explore,
                adapter=adapter, engine=getattr(engine, "name", type(engine).__name__), seed=seed,
            )
            conv.turns.append(SimTurn("user", "user", item.question))
            convs.append(conv)

    with _progress(None, progress, desc, total=len(convs)) as bar:
        round_no = 0
        while True:
            for conv in convs:
                if conv.done or not conv.extractive:
                    continue
                if conv.forced_prefix and not conv.agent_turns:
                    text = extractive_question(conv.item.context, conv.item.question)
                    conv.turns.append(SimTurn("assistant", classify_agent_turn(text), text))
                    _user_turn(conv, text)
                    continue
                clarification = conv.turns[-1].text if conv.agent_turns else None
                text = extractive_answer(conv.item.context, conv.item.question, clarification)
                conv.turns.append(SimTurn("assistant", "answer", text))
                _finish(conv, question_cost)
                bar.update(1)
            if all(c.done for c in convs):
                break
            pending = [c for c in convs if not c.done and not c.extractive]  # scripted ones go on above
            # Per round: the next agent turn of every pending conversation, grouped by temperature, with
            # similar prompt lengths side by side (less padding), `chunk_size` prompts per engine call.
            by_temp: dict[float, list[SimulatedConversation]] = {}
            for conv in pending:
                by_temp.setdefault(conv.temperature, []).append(conv)
            for temp, group in sorted(by_temp.items()):
                prompts = {id(c): behaviour_prompt(c, horizon) for c in group}
                group.sort(key=lambda c: _prompt_size(prompts[id(c)]))
                step = chunk_size or len(group)
                for start in range(0, len(group), step):
                    chunk = group[start:start + step]
                    chunk_params = replace(
                        params, temperature=temp,
                        seed=None if temp == 0 else stable_int("sample", seed, round_no, temp, start) % (2**31),
                    )
                    finished = _agent_step(engine, chunk, [prompts[id(c)] for c in chunk], chunk_params,
                                           adapter, horizon, question_cost)
                    bar.update(finished)
            round_no += 1
    return convs


def _agent_step(engine: Engine, chunk: list[SimulatedConversation], prompts: list[list[dict]],
                params: GenerationParams, adapter: str | None, horizon: int, question_cost: float) -> int:
    """One agent turn for each conversation of `chunk` (one engine call), then the users' replies.

    Returns how many conversations finished.
    """
    prefixes = [c.forced_prefix if c.forced_prefix and not c.agent_turns else "" for c in chunk]
    explorations = [_exploration(c, prompt) if not prefix else None for c, prefix, prompt in zip(chunk, prefixes, prompts)]
    extra = {"explorations": explorations} if any(explorations) else {}
    started = time.perf_counter()
    gens = engine.generate_batch(prompts, params, adapter=adapter, prefixes=prefixes if any(prefixes) else None,
                                 **extra)
    per_conv_ms = (time.perf_counter() - started) * 1000 / len(chunk)   # the call's time, shared
    if len(gens) != len(chunk):
        raise RuntimeError(f"engine returned {len(gens)} replies for {len(chunk)} prompts")
    finished = 0
    for conv, prefix, gen, exploration in zip(chunk, prefixes, gens, explorations):
        text = gen.text.strip()
        if prefix:
            text = cut_after_first_question(text)
        columns = exploration.columns() if exploration is not None else {}
        kind = columns.get("action") or classify_agent_turn(text)  # the action taken, as in chat
        final = must_answer(conv.messages, horizon) or kind != "ask"
        if final and conv.tries + 1 < conv.answer_tries and not grade_answer(conv.item, conv.intent, text).correct:
            # Verifier-assisted behaviour policy: a wrong final answer is sampled again (hotter) next
            # round, for every conversation alike, asked or not. See docs/LEARNING.md.
            conv.tries += 1
            conv.temperature = max(conv.temperature, RETRY_TEMPERATURE)
            continue
        finished += add_agent_turn(conv, SimTurn("assistant", kind, text, latency_ms=per_conv_ms,
                                                 prompt_tokens=gen.prompt_tokens,
                                                 completion_tokens=gen.completion_tokens, **columns),
                                   horizon, question_cost)
    return finished


def add_agent_turn(conv: SimulatedConversation, turn: SimTurn, horizon: int, question_cost: float) -> bool:
    """Append the agent's turn; then the user replies to a clarifying question (agent/user_reply.py), or, when the
    turn is not one or the horizon is reached, the conversation ends and is graded. True when it ended.

    The simulator's batches and bench/traffic.py's chats through ChatService both go on this way."""
    final = must_answer(conv.messages, horizon) or turn.kind != "ask"
    conv.turns.append(turn)
    if final:
        _finish(conv, question_cost)
    else:
        _user_turn(conv, turn.text)
    return final


def _exploration(conv: SimulatedConversation, prompt: list[dict]) -> Exploration | None:
    """The serving exploration of the conversation's next agent turn (None: no exploration, or it must answer);
    its draw is seeded by the item, the conversation and the turn, like the users' replies."""
    if conv.explore <= 0 or not may_ask(prompt):
        return None
    draw = stable_int("explore", conv.seed, conv.item.id, conv.index, len(conv.agent_turns)) / 2**64
    return Exploration(conv.explore, draw)


def _user_turn(conv: SimulatedConversation, question: str) -> None:
    """The user's reply to the agent's clarifying question (agent/user_reply.py), appended."""
    reply = user_reply(conv.item, conv.intent, question,
                       pick=stable_int("reply", conv.seed, conv.item.id, conv.index, len(conv.agent_turns)))
    conv.turns.append(SimTurn("user", "user", reply.text, reply=reply.kind))


def _finish(conv: SimulatedConversation, question_cost: float) -> None:
    conv.done = True
    grade = grade_answer(conv.item, conv.intent, conv.agent_turns[-1].text)
    conv.correct = grade.correct
    conv.reward = conversation_reward(grade.correct, conv.questions, question_cost)


def log_conversations(store, convs: Sequence[SimulatedConversation], *, source: str = SOURCE,
                      progress: bool = False) -> list[str]:
    """Write each finished conversation (turns, meta, reward) to the LogStore; returns the conversation ids.

    Through the LogStore API, whose writer thread commits the rows in batches: about 2 ms
    per conversation here (500 in ~1 s until committed); `progress` shows a bar for big batches.
    """
    for conv in convs:
        if not conv.done:
            raise ValueError(f"conversation {conv.index} of item {conv.item.id!r} is not finished")
    ids = []
    for conv in _progress(convs, progress, "log"):
        cid = store.new_conversation(
            source=source, context=conv.item.context, context_key=conv.item.id, adapter_id=conv.adapter,
            engine=conv.engine, meta=conv.meta(),
        )
        for turn in conv.turns:
            assistant = turn.role == "assistant"
            store.add_turn(
                cid, role=turn.role, kind=turn.kind, text=turn.text,
                adapter_id=conv.adapter if assistant else None, engine=conv.engine if assistant else None,
                latency_ms=turn.latency_ms, prompt_tokens=turn.prompt_tokens,
                completion_tokens=turn.completion_tokens, p_ask=turn.p_ask, action=turn.action,
                propensity=turn.propensity, explored=turn.explored,
            )
        store.set_conversation_reward(cid, conv.reward)
        conv.conversation_id = cid
        ids.append(cid)
    return ids
