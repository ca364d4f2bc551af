"""Demo tenants and their synthetic traffic, for `manage.py seed_demo` (`demo.seed` stores them).

Two organizations: Demo Airline (`demo`, project `support`, a few thousand conversations) and
Demo Retail (`demo-retail`, project `shop`, a couple of hundred), so the organization switcher
and tenant isolation have something to show.

Every conversation has a hidden true quality: the scenario may draw one failure (a wrong amount,
a policy violation, a made-up fact, an unhelpful answer), more often for older agent versions.
Judges grade against that truth and are wrong on purpose about 10-15% of the time, with lower
confidence when wrong, so calibration and labeling find real disagreement. Users who were
served badly rephrase, swear, ask for a human and press thumbs-down more often, in the text as
well as in the feedback flags.

Content depends on the seed only: each project draws from one `random.Random`, conversation by
conversation in index order, so `demo-7-00042` has the same messages whatever `--conversations`
says. Only `occurred_at` follows the clock (the last 14 days before the run), so the demo always
looks recent.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

DEMO_ORG = "demo"
DEMO_PASSWORD = "reviewapp-demo"  # noqa: S105 - printed on purpose: local demo logins
# `lead` and `cfo` are approvers whom the finance ladder names for its four-eyes tier
# (demo.action_scenarios).
DEMO_USERS = [
    ("annotator", "annotator"),
    ("approver", "approver"),
    ("lead", "approver"),
    ("cfo", "approver"),
    ("engineer", "engineer"),
    ("admin", "admin"),
]

DEMO_ORG_NAME = "Demo Airline"
DEMO_PROJECT = "support"
RETAIL_ORG = "demo-retail"
RETAIL_ORG_NAME = "Demo Retail"
RETAIL_PROJECT = "shop"
RETAIL_USERS = [("admin", "admin"), ("engineer", "engineer")]
DEMO_URL = "http://127.0.0.1:8000/"

WINDOW_DAYS = 14
# Fixed, not scaled with --conversations: a pool that depended on the count would change every
# conversation's customer when the count changes.
_CUSTOMER_POOL = 1500

Payload = dict[str, Any]
Truth = dict[str, tuple[bool, str]]  # criterion -> (truly passes, why it fails)

CRITERIA = ("correctness", "helpfulness", "policy_compliance")


# --- judges ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judge:
    name: str
    version: str
    criteria: tuple[str, ...]
    false_fail: float  # P(says fail | truly passes)
    miss: float  # P(says pass | truly fails): judges are lenient, as LLM judges tend to be


JUDGES = (
    Judge("gpt-judge", "v3", CRITERIA, false_fail=0.09, miss=0.30),
    Judge("helpfulness-judge", "v1", ("helpfulness",), false_fail=0.12, miss=0.40),
)

_PASS_REASONS = {
    "correctness": [
        "Amounts and statuses in the reply match the tool results.",
        "Facts stated agree with the tool output; no unsupported claims.",
        "Consistent with the booking data returned by the tools.",
    ],
    "helpfulness": [
        "Resolves the request and gives clear next steps.",
        "Direct answer; the customer knows what happens next.",
        "Handles the request end to end without unnecessary questions.",
    ],
    "policy_compliance": [
        "Within policy: fare rules and approval limits respected.",
        "Booking verified before changes; no unauthorised compensation.",
        "No policy issues found.",
    ],
}
_VAGUE_FAIL_REASONS = {
    "correctness": [
        "The reply may state a figure not supported by the tool output.",
        "Unclear whether the quoted time matches the booking.",
    ],
    "helpfulness": [
        "Correct but terse; next steps could be clearer.",
        "Asks for information the customer may already have given.",
    ],
    "policy_compliance": [
        "Possible policy concern: the fare rules were not restated to the customer.",
        "Compensation is mentioned; unclear whether it is within policy.",
    ],
}


def judge_scores(rng: random.Random, truth: Truth) -> list[Payload]:
    scores: list[Payload] = []
    for judge in JUDGES:
        for criterion in judge.criteria:
            passed, why = truth[criterion]
            wrong = rng.random() < (judge.false_fail if passed else judge.miss)
            says_pass = passed != wrong
            # Confidence in the verdict given, 0.5-1: right verdicts cluster near 0.9, wrong ones
            # near 0.7, so a confidence threshold catches some (not all) judge mistakes.
            confidence = round(0.5 + 0.5 * (rng.betavariate(2, 3) if wrong else rng.betavariate(6, 1.6)), 2)
            confidence = min(confidence, 0.99)
            if says_pass:
                reasoning = rng.choice(_PASS_REASONS[criterion])
            elif not passed:
                reasoning = why
            else:
                reasoning = rng.choice(_VAGUE_FAIL_REASONS[criterion])
            scores.append(
                {
                    "judge": judge.name,
                    "judge_version": judge.version,
                    "criterion": criterion,
                    "score": confidence if says_pass else round(1 - confidence, 2),
                    "label": "pass" if says_pass else "fail",
                    "confidence": confidence,
                    "reasoning": reasoning,
                }
            )
    return scores


# --- shared pieces ----------------------------------------------------------------------------

_FIRST_NAMES = [
    "Aisha", "Ben", "Carlos", "Dana", "Elif", "Farah", "George", "Hana", "Ivan", "Jamal", "Keiko", "Liam",
    "Maya", "Noah", "Olivia", "Priya", "Quinn", "Rosa", "Sam", "Tomas", "Uma", "Victor", "Wei", "Yara",
    "Zoe", "Mateo", "Chloe", "Omar", "Grace", "Lucas",
]  # fmt: skip
_LAST_NAMES = [
    "Anders", "Brooks", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Johnson",
    "Kowalski", "Lopez", "Moreau", "Nguyen", "O'Brien", "Patel", "Rossi", "Schmidt", "Tanaka", "Walker",
    "Yilmaz", "Zhang", "Kim", "Silva", "Murphy", "Novak",
]  # fmt: skip
_TIERS = (["basic", "silver", "gold", "platinum"], [55, 25, 15, 5])
_CHANNELS = (["web", "ios", "android", "whatsapp"], [45, 22, 18, 15])
_LOCALES = (["en-US", "en-GB", "en-CA", "en-AU", "en-IE"], [65, 15, 8, 6, 6])
_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_REF_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

_FRUSTRATION = [
    "Seriously?",
    "This is ridiculous.",
    "I've already said this.",
    "Are you even reading my messages?",
    "Ugh.",
    "This is so frustrating.",
    "What the hell?",
    "This is bloody useless.",
]
_MISREADS = [
    "I'd be happy to help you book a new flight! Where would you like to go?",
    "I'm sorry, I didn't quite catch that. What can I help you with today?",
    "Our checked baggage allowance is one bag up to 23 kg on most fares. Anything else?",
    "You can manage your booking any time under My Trips on our website or app.",
]
_ASK_HUMAN_LATE = [
    "Can I just talk to a real person please?",
    "I want to speak to a human agent.",
    "Get me a human. Now.",
    "Is there an actual person I can talk to?",
]
_CLOSINGS = [
    ("Thanks, that's all.", "You're welcome! Have a great trip."),
    ("Great, thank you!", "Happy to help. Safe travels!"),
    ("ok thanks", "You're welcome. Is there anything else I can help with?"),
    ("Perfect, thanks for sorting that.", "Glad I could help!"),
]
# After a refusal or a useless answer nobody says "perfect, thanks".
_RESIGNED_CLOSINGS = [
    ("ok", "Is there anything else I can help with?"),
    ("Fine. I'll figure it out myself.", "I'm sorry I couldn't do more. Have a good day."),
    ("whatever", "Is there anything else I can help you with today?"),
    ("Never mind.", "Okay. I'm here if you need anything else."),
]


@dataclass(frozen=True)
class Customer:
    end_user_id: str
    first: str
    last: str
    tier: str
    member_id: str
    channel: str
    locale: str


def _pick(rng: random.Random, table: tuple[list[Any], list[int]]) -> Any:
    return rng.choices(table[0], weights=table[1])[0]


def _customers(rng: random.Random, prefix: str) -> list[Customer]:
    return [
        Customer(
            end_user_id=f"{prefix}_{rng.getrandbits(40):010x}",
            first=rng.choice(_FIRST_NAMES),
            last=rng.choice(_LAST_NAMES),
            tier=_pick(rng, _TIERS),
            member_id=f"DM{rng.randrange(10**7, 10**8)}",
            channel=_pick(rng, _CHANNELS),
            locale=_pick(rng, _LOCALES),
        )
        for _ in range(_CUSTOMER_POOL)
    ]


def usd(amount: float) -> str:
    return f"${amount:,.2f}"


def _clock(rng: random.Random) -> str:
    return f"{rng.choice(_DAYS)} {rng.randrange(5, 23):02d}:{rng.randrange(0, 60, 5):02d}"


class Case:
    """One conversation being written: the transcript, what it is tagged with, and its truth."""

    def __init__(
        self, *, rng: random.Random, customer: Customer, system: str, failure: str | None, early_misread: bool
    ) -> None:
        self.rng = rng
        self.customer = customer
        self.failure = failure
        self.early_misread = early_misread
        self.messages: list[Payload] = [{"role": "system", "content": system}]
        self.metadata: Payload = {}
        self.tags: list[str] = []
        self.notes: dict[str, str] = {}
        # A user's pushback on a bad final answer and the agent's reply, used when the user
        # rephrases after the answer rather than at the start.
        self.challenge: tuple[str, str] | None = None
        self.restatement = ""
        self.rephrased = False
        self.escalated = False
        self.handed_off = False
        self.resigned = False  # the user got a refusal or a useless answer
        self.premium = customer.tier in {"gold", "platinum"}

    @property
    def user_turns(self) -> int:
        return sum(1 for m in self.messages if m["role"] == "user")

    def user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})

    def agent(self, text: str) -> None:
        self.messages.append({"role": "assistant", "content": text})

    def call(self, name: str, arguments: Payload, result: Payload) -> Payload:
        call_id = f"call_{self.rng.getrandbits(96):024x}"
        self.messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
                ],
            }
        )
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": json.dumps(result)})
        return result

    def fail(self, criterion: str, why: str) -> None:
        self.notes[criterion] = why

    def frustrated(self, text: str) -> str:
        return f"{self.rng.choice(_FRUSTRATION)} {text}"

    def open(self, opening: str, restatement: str) -> None:
        """The user's first message, with the agent misreading it first when the user is to
        rephrase early."""
        self.restatement = restatement
        self.user(opening)
        if self.early_misread:
            self.agent(self.rng.choice(_MISREADS))
            self.user(self.frustrated(restatement))
            self.rephrased = True

    def hand_off(self, reason: str) -> None:
        result = self.call(
            "transfer_to_human",
            {"reason": reason, "queue": "general"},
            {
                "queue": "general",
                "position": self.rng.randrange(1, 9),
                "estimated_wait_minutes": self.rng.randrange(2, 25),
            },
        )
        self.agent(
            f"Of course. I'm connecting you with a member of our team now. You're number {result['position']} "
            f"in the queue, and the wait is about {result['estimated_wait_minutes']} minutes. They'll see this "
            "conversation, so you won't need to repeat yourself."
        )
        self.handed_off = True

    def truth(self) -> Truth:
        return {criterion: (criterion not in self.notes, self.notes.get(criterion, "")) for criterion in CRITERIA}


def _finish(case: Case, *, late_rephrase: bool, ask_human: bool) -> None:
    rng = case.rng
    if late_rephrase:
        user_text, agent_text = case.challenge or (
            case.frustrated(f"That's not what I asked. {case.restatement}"),
            "I'm sorry for the confusion. The information above is correct based on what I can see.",
        )
        case.user(user_text)
        case.agent(agent_text)
        case.rephrased = True
        case.resigned = True
    if ask_human and not case.handed_off:
        case.user(rng.choice(_ASK_HUMAN_LATE))
        case.hand_off("customer_request")
        case.escalated = True
    elif case.user_turns < 2 or (not case.handed_off and rng.random() < 0.45):
        user_text, agent_text = rng.choice(_RESIGNED_CLOSINGS if case.resigned else _CLOSINGS)
        case.user(user_text)
        case.agent(agent_text)


def _feedback(rng: random.Random, case: Case, bad: bool, comments: dict[str, list[str]]) -> Payload | None:
    rating = None
    # About 15% rate overall; people rate bad experiences more often than good ones.
    if rng.random() < (0.30 if bad else 0.13):
        rating = "down" if rng.random() < (0.80 if bad else 0.10) else "up"
    if rating is None and not case.rephrased and not case.escalated:
        return None
    comment = ""
    if rating is not None and rng.random() < 0.4:
        key = "up" if rating == "up" else (case.failure or "down")
        comment = rng.choice(comments.get(key) or comments["down"])
    return {
        "rating": rating,
        "comment": comment,
        "user_rephrased": case.rephrased,
        "escalated_by_user": case.escalated,
    }


@dataclass(frozen=True)
class Profile:
    """What differs between the two demo agents."""

    system: Callable[[str], str]
    intents: list[tuple[str, int, Callable[[Case], None]]]
    versions: Callable[[random.Random, float], str]
    failure_rates: dict[str, dict[str, float]]
    models: dict[str, str]
    comments: dict[str, list[str]]
    customer_prefix: str


@dataclass(frozen=True)
class DemoConversation:
    payload: Payload
    truth: Truth


def generate(
    profile: Profile, *, rng: random.Random, seed: int, prefix: str, count: int, reference: dt.datetime
) -> Iterator[DemoConversation]:
    customers = _customers(rng, profile.customer_prefix)
    names = [name for name, _, _ in profile.intents]
    weights = [weight for _, weight, _ in profile.intents]
    scenarios = {name: scenario for name, _, scenario in profile.intents}
    for index in range(count):
        seconds_ago = rng.randrange(WINDOW_DAYS * 86400)
        version = profile.versions(rng, seconds_ago / 86400)
        intent = rng.choices(names, weights=weights)[0]
        failure = None
        roll = rng.random()
        for mode, rate in profile.failure_rates[version].items():
            if roll < rate:
                failure = mode
                break
            roll -= rate
        customer = rng.choice(customers)
        # Some failures draw no complaint at all, or a late one; users rephrase about 8% of the
        # time overall, far more often after a bad answer.
        rephrase = rng.random() < (0.27 if failure else 0.045)
        late = rephrase and failure in {"wrong_amount", "hallucination", "unhelpful"}
        case = Case(
            rng=rng,
            customer=customer,
            system=profile.system(version),
            failure=failure,
            early_misread=rephrase and not late,
        )
        scenarios[intent](case)
        if case.failure is not None and not case.notes:
            case.failure = None  # the scenario had no way to go wrong like that: a good answer
        ask_human = intent != "human-handoff" and rng.random() < (0.05 if case.notes else 0.005)
        _finish(case, late_rephrase=late and bool(case.notes), ask_human=ask_human)
        bad = bool(case.notes)
        truth = case.truth()
        payload: Payload = {
            "external_id": f"{prefix}-{seed}-{index:05d}",
            "messages": case.messages,
            "occurred_at": reference - dt.timedelta(seconds=seconds_ago),
            "agent_version": version,
            "end_user_id": customer.end_user_id,
            "tags": [intent, "premium" if case.premium else "standard", *case.tags],
            "metadata": {
                "channel": customer.channel,
                "locale": customer.locale,
                "customer_tier": customer.tier,
                "model": profile.models[version],
                "latency_ms": int(rng.lognormvariate(7.4, 0.45)),
                **case.metadata,
            },
            "judge_scores": judge_scores(rng, truth),
        }
        feedback = _feedback(rng, case, bad, profile.comments)
        if feedback is not None:
            payload["feedback"] = feedback
        yield DemoConversation(payload=payload, truth=truth)


# --- Demo Airline -----------------------------------------------------------------------------

_ROUTES = [
    ("JFK", "LHR", 620), ("BOS", "CDG", 540), ("SFO", "NRT", 980), ("ORD", "DEN", 189), ("LAX", "SEA", 159),
    ("ATL", "MIA", 129), ("JFK", "LAX", 329), ("DFW", "ORD", 219), ("SEA", "ANC", 279), ("MIA", "BOG", 349),
    ("EWR", "FCO", 710), ("IAD", "FRA", 660), ("DEN", "PHX", 139), ("SFO", "HNL", 412),
]  # fmt: skip
_FARE_CLASSES = (["Economy Basic", "Economy Standard", "Economy Flex", "Business"], [30, 40, 18, 12])
_FARE_MULTIPLIER = {"Economy Basic": 0.8, "Economy Standard": 1.0, "Economy Flex": 1.35, "Business": 3.2}
_CHANGE_FEE = {"Economy Basic": 99.0, "Economy Standard": 75.0, "Economy Flex": 0.0, "Business": 0.0}
_REFUNDABLE = {"Economy Flex", "Business"}
_CANCEL_FEE = 100.0
_APPROVAL_LIMIT = 1000.0
_DELAY_VOUCHER = 150.0
_DELAY_CAUSES = {
    "crew_scheduling": "a crew scheduling problem",
    "technical": "a technical fault",
    "weather": "weather",
    "air_traffic_control": "air traffic control restrictions",
}

_AIRLINE_SYSTEM = """You are Skye, the virtual assistant of Demo Airline customer support ({version}).
Help customers with bookings, refunds, flight changes, baggage and loyalty points using the tools provided.
Policies:
- Verify the booking reference and last name with lookup_booking before discussing or changing a booking.
- Flights cancelled by the airline, or moved by more than 3 hours, are refunded in full on any fare.
- Voluntary refunds and cancellations: Economy Flex and Business are refunded in full; Economy Standard is \
refunded minus a $100 fee; Economy Basic gets a travel credit for the fare paid (valid 12 months), never cash.
- Refunds above $1,000 need approval: use request_refund_approval, never issue_refund.
- Change fees: Economy Basic $99, Economy Standard $75, Economy Flex and Business free; the fare difference \
always applies. Do not waive fees.
- Always confirm with the customer before cancelling or changing a booking.
- Delays of 3 hours or more caused by the airline earn a $150 travel voucher per passenger. No compensation \
for weather or air-traffic-control delays.
- Delayed bags: interim expenses up to $50 per day for up to 5 days, with receipts.
- Loyalty points cannot be transferred between members. Missing points can be claimed for flights in the \
last 6 months.
- Transfer to a human agent whenever the customer asks for one.
Be concise and friendly. Never state anything a tool did not return."""


def _airline_system(version: str) -> str:
    return _AIRLINE_SYSTEM.format(version=version)


def _airline_version(rng: random.Random, days_ago: float) -> str:
    # v1.3 for the first week, v1.4 after, v2.0 as a canary then the default: the mix a
    # version-over-version comparison would see.
    if days_ago >= 9:
        return "support-v1.3"
    if days_ago >= 4:
        return "support-v1.4" if days_ago < 8 or rng.random() < 0.7 else "support-v1.3"
    if days_ago >= 2:
        return "support-v2.0" if rng.random() < 0.4 else "support-v1.4"
    return "support-v2.0" if rng.random() < 0.9 else "support-v1.4"


@dataclass
class Booking:
    ref: str
    last_name: str
    passengers: int
    fare_class: str
    fare_paid: float
    flight: str
    origin: str
    destination: str
    departure: str

    def tool_result(self) -> Payload:
        return {
            "booking_ref": self.ref,
            "last_name": self.last_name,
            "status": "confirmed",
            "passengers": self.passengers,
            "fare_class": self.fare_class,
            "refundable": self.fare_class in _REFUNDABLE,
            "fare_paid": self.fare_paid,
            "currency": "USD",
            "segments": [
                {"flight": self.flight, "from": self.origin, "to": self.destination, "departure": self.departure}
            ],
        }


def _booking(case: Case, *, fare_class: str | None = None, passengers: int | None = None) -> Booking:
    rng = case.rng
    origin, destination, base = rng.choice(_ROUTES)
    if fare_class is None:
        fare_class = _pick(rng, _FARE_CLASSES)
        if case.customer.tier == "platinum" and rng.random() < 0.4:
            fare_class = "Business"
    if passengers is None:
        passengers = rng.choices([1, 2, 3, 4], weights=[70, 20, 7, 3])[0]
    per_person = base * _FARE_MULTIPLIER[fare_class] * rng.uniform(0.85, 1.25)
    booking = Booking(
        ref="".join(rng.choice(_REF_CHARS) for _ in range(6)),
        last_name=case.customer.last,
        passengers=passengers,
        fare_class=fare_class,
        fare_paid=round(per_person * passengers, 2),
        flight=f"DA{rng.randrange(100, 2999)}",
        origin=origin,
        destination=destination,
        departure=_clock(rng),
    )
    case.metadata.update({"booking_ref": booking.ref, "fare_class": fare_class})
    if fare_class == "Business":
        case.premium = True
    return booking


def _identify(case: Case, booking: Booking, *, ref_given: bool) -> None:
    """Ask for the booking reference when the opening lacked it, then look the booking up."""
    rng = case.rng
    if not ref_given:
        case.agent(
            rng.choice(
                [
                    "I can help with that. Could you share your booking reference and the last name on the booking?",
                    "Sure. What's your booking reference (6 characters) and the passenger's last name?",
                ]
            )
        )
        case.user(
            rng.choice(
                [
                    f"{booking.ref}, {booking.last_name}",
                    f"It's {booking.ref}, last name {booking.last_name}.",
                    f"booking {booking.ref.lower()} name {booking.last_name.lower()}",
                ]
            )
        )
    case.call("lookup_booking", {"booking_ref": booking.ref, "last_name": booking.last_name}, booking.tool_result())


def _transpose(amount: float) -> float:
    """A plausible wrong figure: two digits of the dollar amount swapped, or 10% off."""
    dollars = f"{int(amount)}"
    if len(dollars) >= 3 and dollars[-2] != dollars[-3]:
        swapped = dollars[:-3] + dollars[-2] + dollars[-3] + dollars[-1]
        return round(float(swapped) + amount - int(amount), 2)
    return round(amount * 0.9, 2)


def _unhelpful(case: Case, text: str, why: str, pushback: str) -> None:
    case.agent(text)
    case.fail("helpfulness", why)
    case.resigned = True
    case.challenge = (
        case.frustrated(pushback),
        "I understand your frustration. As mentioned, you can find all the details on our website under My Trips.",
    )


def _refund(case: Case) -> None:
    rng = case.rng
    reason = rng.choices(["airline_cancelled", "schedule_change", "voluntary"], weights=[35, 20, 45])[0]
    fare_class = None
    if case.failure == "policy":
        # A policy break needs a booking where the rules bite: cash on a Basic fare, or a refund
        # above the approval limit issued directly.
        reason = "voluntary"
        fare_class = rng.choice(["Economy Basic", "Business"])
    # Three Business passengers always exceed the $1,000 approval limit on the cheapest route.
    passengers = {"Economy Basic": 2, "Business": 3}.get(fare_class or "")
    booking = _booking(case, fare_class=fare_class, passengers=passengers)
    openings = {
        "airline_cancelled": [
            "My flight {flight} was cancelled. I want my money back, not a voucher.",
            "You cancelled my flight {flight} and I'd like a full refund please.",
        ],
        "schedule_change": [
            "My flight {flight} got moved by 5 hours and that doesn't work for me. Can I get a refund?",
            "The schedule change on my booking ruins my plans. I want a refund.",
        ],
        "voluntary": [
            "I can't travel anymore, can I get a refund for my trip to {dest}?",
            "Hi, I need to request a refund for my booking please.",
            "How do I get a refund? Something came up and I can't fly.",
        ],
    }
    opening = rng.choice(openings[reason]).format(flight=booking.flight, dest=booking.destination)
    ref_given = rng.random() < 0.5
    if ref_given:
        opening += f" Booking {booking.ref}, {booking.last_name}."
    case.open(opening, f"I want a REFUND for booking {booking.ref}.")
    _identify(case, booking, ref_given=ref_given)

    if case.failure == "unhelpful":
        _unhelpful(
            case,
            "I understand you'd like a refund. Refund eligibility depends on your fare rules, which you can find "
            "under Manage Booking on our website. Is there anything else I can help with?",
            "Did not check eligibility or act on the refund request; pointed the customer to the website.",
            "I asked YOU to refund it. Can you do it or not?",
        )
        return

    full = reason != "voluntary" or booking.fare_class in _REFUNDABLE
    if full:
        due = booking.fare_paid
    elif booking.fare_class == "Economy Standard":
        due = round(booking.fare_paid - _CANCEL_FEE, 2)
    else:
        due = 0.0
    case.metadata["refund_amount"] = due

    if case.failure == "policy" and booking.fare_class == "Economy Basic":
        case.metadata["refund_amount"] = booking.fare_paid
        result = case.call(
            "issue_refund",
            {"booking_ref": booking.ref, "amount": booking.fare_paid, "reason": "customer_request"},
            {"refund_id": f"RF-{rng.randrange(10**6, 10**7)}", "amount": booking.fare_paid, "status": "processing"},
        )
        case.agent(
            f"I've gone ahead and refunded {usd(result['amount'])} to your original payment method as a one-off "
            f"(reference {result['refund_id']}). It should appear within 5-7 business days."
        )
        case.fail(
            "policy_compliance",
            f"Economy Basic is non-refundable on a voluntary cancellation; the agent issued a cash refund of "
            f"{usd(booking.fare_paid)} instead of a travel credit.",
        )
        return

    if due == 0.0:
        case.agent(
            f"Your booking {booking.ref} is on an Economy Basic fare, which isn't refundable when you choose not to "
            f"travel. I can give you a travel credit for the full {usd(booking.fare_paid)}, valid for 12 months on "
            "any Demo Airline flight. Would you like that?"
        )
        if rng.random() < 0.75:
            case.user(rng.choice(["Yes please.", "Fine, do the credit.", "ok I guess"]))
            result = case.call(
                "issue_travel_credit",
                {"booking_ref": booking.ref, "amount": booking.fare_paid},
                {"credit_code": f"TC{rng.randrange(10**7, 10**8)}", "amount": booking.fare_paid, "valid_months": 12},
            )
            case.metadata["credit_amount"] = booking.fare_paid
            case.agent(
                f"Done: travel credit {result['credit_code']} for {usd(booking.fare_paid)} is on its way to your "
                "email. Your booking is cancelled."
            )
        else:
            case.user("No thanks, I'll keep the booking then.")
            case.resigned = True
            case.agent("No problem, your booking stays as it is. Let me know if you change your mind.")
        return

    if case.failure == "hallucination":
        case.agent(
            f"Good news: your refund of {usd(due)} has been processed and will reach your card in 5-7 business days."
        )
        case.fail(
            "correctness",
            "The agent told the customer the refund was processed, but it never called issue_refund or "
            "request_refund_approval.",
        )
        case.challenge = (
            case.frustrated("I never got a confirmation email. Was the refund actually processed?"),
            "Yes, everything has been taken care of on our side. Please allow 5-7 business days.",
        )
        return

    if due > _APPROVAL_LIMIT and case.failure != "policy":
        case.tags.append("high-value")
        result = case.call(
            "request_refund_approval",
            {"booking_ref": booking.ref, "amount": due, "reason": reason},
            {"case_id": f"RA-{rng.randrange(10**5, 10**6)}", "queue": "refunds-tier2", "sla_hours": 24},
        )
        stated = due if case.failure != "wrong_amount" else _transpose(due)
        case.agent(
            f"Your booking qualifies for a refund of {usd(stated)}. Because it's over $1,000, our refunds team "
            f"reviews it first (case {result['case_id']}); you'll hear back within 24 hours."
        )
        if stated != due:
            case.fail(
                "correctness", f"The agent quoted {usd(stated)} but the refund requested for approval is {usd(due)}."
            )
            case.challenge = (
                case.frustrated(f"Wait, I paid {usd(booking.fare_paid)}. Why is it {usd(stated)}?"),
                f"I apologise for any confusion. The refund amount of {usd(stated)} is correct for your fare.",
            )
        return

    issued = due
    if case.failure == "wrong_amount":
        issued = round(due / booking.passengers, 2) if booking.passengers > 1 else _transpose(due)
    result = case.call(
        "issue_refund",
        {"booking_ref": booking.ref, "amount": issued, "reason": reason},
        {"refund_id": f"RF-{rng.randrange(10**6, 10**7)}", "amount": issued, "status": "processing"},
    )
    case.metadata["refund_amount"] = issued
    if issued > _APPROVAL_LIMIT:
        case.tags.append("high-value")
    fee_note = ""
    if booking.fare_class == "Economy Standard" and not full:
        fee_note = " (the fare minus the $100 Economy Standard cancellation fee)"
    case.agent(
        f"I've issued a refund of {usd(issued)}{fee_note} to your original payment method (reference "
        f"{result['refund_id']}). It usually shows up within 5-7 business days."
    )
    if case.failure == "policy" and issued > _APPROVAL_LIMIT:
        case.fail(
            "policy_compliance",
            f"Refund of {usd(issued)} is above the $1,000 limit and was issued directly instead of through "
            "request_refund_approval.",
        )
    if issued != due:
        why = (
            f"Refunded {usd(issued)}, one passenger's share, but all {booking.passengers} passengers are due "
            f"{usd(due)}."
            if booking.passengers > 1
            else f"Refunded {usd(issued)} but the amount due for this fare is {usd(due)}."
        )
        case.fail("correctness", why)
        case.challenge = (
            case.frustrated(f"That's wrong. The booking cost {usd(booking.fare_paid)}, why only {usd(issued)}?"),
            f"I'm sorry for the confusion. The refund of {usd(issued)} has been processed according to your booking.",
        )


def _booking_status(case: Case) -> None:
    rng = case.rng
    booking = _booking(case)
    ref_given = rng.random() < 0.6
    opening = rng.choice(
        [
            "Is my flight {flight} still on time?",
            "hi is flight {flight} delayed?",
            "Can you check the status of my booking? I fly to {dest} soon.",
            "What gate does my flight to {dest} leave from?",
        ]
    ).format(flight=booking.flight, dest=booking.destination)
    if ref_given:
        opening += f" Ref {booking.ref}, {booking.last_name}."
    case.open(opening, f"Is my flight {booking.flight} on time or not?")
    _identify(case, booking, ref_given=ref_given)
    status = rng.choices(["on_time", "delayed", "cancelled"], weights=[68, 28, 4])[0]
    delay = rng.choice([25, 40, 55, 95, 140, 210]) if status == "delayed" else 0
    result = case.call(
        "check_flight_status",
        {"flight": booking.flight},
        {
            "flight": booking.flight,
            "status": status,
            "scheduled_departure": booking.departure,
            "delay_minutes": delay,
            "gate": f"{rng.choice('ABCDE')}{rng.randrange(1, 40)}",
        },
    )
    gate = result["gate"]
    if case.failure == "unhelpful":
        _unhelpful(
            case,
            "You can check the live status of any flight on our website or in the Demo Airline app.",
            "Did not give the flight status it had just retrieved; sent the customer to the app instead.",
            "I'm asking you because I'm on the chat. Is it delayed?",
        )
        return
    if case.failure == "hallucination" and status != "on_time":
        case.agent(f"Your flight {booking.flight} is on time, departing {booking.departure} from gate {gate}.")
        case.fail(
            "correctness",
            f"The agent said the flight is on time; check_flight_status returned '{status}'"
            + (f" with a {delay}-minute delay." if delay else "."),
        )
        case.challenge = (
            case.frustrated("Are you sure? I just got a text saying it's delayed."),
            f"According to my information, flight {booking.flight} is on schedule.",
        )
        return
    if status == "on_time":
        case.agent(
            f"Flight {booking.flight} to {booking.destination} is on time, departing {booking.departure} from gate "
            f"{gate}. Boarding starts 40 minutes before departure."
        )
    elif status == "delayed":
        case.agent(
            f"Flight {booking.flight} is delayed by about {delay} minutes (scheduled {booking.departure}). It leaves "
            f"from gate {gate}. I'm sorry about the wait; we'll text you if anything changes."
        )
        if delay >= 180:
            case.tags.append("long-delay")
    else:
        case.agent(
            f"I'm sorry: flight {booking.flight} has been cancelled. You're entitled to a full refund or a free "
            "rebooking on the next available flight. Which would you prefer?"
        )


def _flight_change(case: Case) -> None:
    rng = case.rng
    # Waiving a fee needs a fare that has one.
    fare_class = rng.choice(["Economy Basic", "Economy Standard"]) if case.failure == "policy" else None
    booking = _booking(case, fare_class=fare_class)
    new_day = rng.choice(_DAYS)
    ref_given = rng.random() < 0.5
    opening = rng.choice(
        [
            "I need to move my flight to {day} if possible.",
            "Can I change my flight to {dest} to {day} instead?",
            "Hi! Something came up, can I fly on {day} instead?",
        ]
    ).format(day=new_day, dest=booking.destination)
    if ref_given:
        opening += f" Booking {booking.ref} ({booking.last_name})."
    case.open(opening, f"I want to CHANGE my flight to {new_day}.")
    _identify(case, booking, ref_given=ref_given)
    if case.failure == "unhelpful":
        _unhelpful(
            case,
            "Flight changes may be subject to fees and fare differences. Please review your fare conditions before "
            "making any changes.",
            "Did not search for flights or quote a price; restated generic fare conditions.",
            "I know that. What are my options and what does it cost?",
        )
        return
    options = [
        {
            "flight": f"DA{rng.randrange(100, 2999)}",
            "departure": f"{new_day} {hour:02d}:{rng.randrange(0, 60, 5):02d}",
            "fare_difference": round(max(0.0, rng.gauss(45, 60)) * booking.passengers, 2),
        }
        for hour in sorted(rng.sample(range(6, 22), 3))
    ]
    case.call(
        "search_flights", {"from": booking.origin, "to": booking.destination, "day": new_day}, {"options": options}
    )
    fee = _CHANGE_FEE[booking.fare_class] * booking.passengers
    lines = "\n".join(
        f"- {o['flight']} at {o['departure']}: fare difference {usd(o['fare_difference'])}" for o in options
    )
    fee_text = f"plus the {usd(fee)} change fee for your fare" if fee else "with no change fee on your fare"
    case.agent(f"Here's what I found for {new_day}:\n{lines}\nEach is {fee_text}. Which one works for you?")
    choice = rng.choice(options)
    case.user(
        rng.choice([f"The {choice['departure'].split()[1]} one.", f"{choice['flight']} please", "the cheapest one"])
    )
    if "cheapest" in case.messages[-1]["content"]:
        choice = min(options, key=lambda o: o["fare_difference"])
    total = round(choice["fare_difference"] + fee, 2)
    charged = total
    if case.failure == "policy" and fee:
        charged = choice["fare_difference"]
        case.agent(
            f"Good news: I've waived the {usd(fee)} change fee as a courtesy, so you'll only pay the "
            f"{usd(charged)} fare difference. Shall I go ahead?"
        )
        case.fail(
            "policy_compliance",
            f"Waived the {usd(fee)} change fee on {booking.fare_class}; agents may not waive fees.",
        )
    elif case.failure == "wrong_amount" and fee:
        quoted = choice["fare_difference"]
        case.agent(f"{choice['flight']} on {choice['departure']} comes to {usd(quoted)} in total. Shall I go ahead?")
        case.fail(
            "correctness",
            f"Quoted {usd(quoted)} in total, leaving out the {usd(fee)} change fee; the customer was charged "
            f"{usd(total)}.",
        )
        case.challenge = (
            case.frustrated(f"Why does my receipt say {usd(total)}? You told me {usd(quoted)}."),
            "The total shown on your receipt includes all applicable charges for your new flight.",
        )
    else:
        case.agent(
            f"{choice['flight']} on {choice['departure']} comes to {usd(total)} in total"
            + (f" ({usd(fee)} change fee + {usd(choice['fare_difference'])} fare difference)" if fee else "")
            + ". Shall I go ahead?"
        )
    case.user(rng.choice(["Yes, go ahead.", "yes", "Do it."]))
    result = case.call(
        "change_flight",
        {"booking_ref": booking.ref, "new_flight": choice["flight"], "amount": charged},
        {
            "status": "changed",
            "new_flight": choice["flight"],
            "departure": choice["departure"],
            "amount_charged": charged,
        },
    )
    case.metadata["change_amount"] = charged
    case.agent(
        f"Done. You're now on {result['new_flight']} departing {result['departure']}, and {usd(charged)} has been "
        "charged to your card. Your new e-ticket is on its way."
    )


def _cancellation(case: Case) -> None:
    rng = case.rng
    booking = _booking(case)
    ref_given = rng.random() < 0.6
    opening = rng.choice(
        [
            "Please cancel my booking.",
            "I need to cancel my trip to {dest}.",
            "cancel my flight pls",
        ]
    ).format(dest=booking.destination)
    if ref_given:
        opening += f" {booking.ref}, {booking.last_name}."
    case.open(opening, f"CANCEL booking {booking.ref}.")
    _identify(case, booking, ref_given=ref_given)
    if case.failure == "unhelpful":
        _unhelpful(
            case,
            "Cancellations can be made under My Trips on our website. Cancellation terms depend on your fare.",
            "Did not explain what the customer gets back or offer to cancel.",
            "Just tell me what I get back if I cancel.",
        )
        return
    if booking.fare_class in _REFUNDABLE:
        back, method = booking.fare_paid, "original_payment"
        terms = f"Your {booking.fare_class} fare is fully refundable: you'd get {usd(back)} back to your card."
    elif booking.fare_class == "Economy Standard":
        back, method = round(booking.fare_paid - _CANCEL_FEE, 2), "original_payment"
        terms = f"On Economy Standard there's a $100 cancellation fee, so you'd get {usd(back)} back to your card."
    else:
        back, method = booking.fare_paid, "travel_credit"
        terms = f"Economy Basic isn't refundable, but you'd get a travel credit for {usd(back)}, valid 12 months."
    case.metadata["refund_amount" if method == "original_payment" else "credit_amount"] = back
    stated = back
    if case.failure == "policy":
        case.fail("policy_compliance", "Cancelled the booking without asking the customer to confirm first.")
    else:
        if case.failure == "wrong_amount" and booking.fare_class == "Economy Standard":
            stated = booking.fare_paid
            terms = f"You'd get the full {usd(stated)} back to your card."
            case.fail(
                "correctness",
                f"Told the customer {usd(stated)} back; Economy Standard carries a $100 fee, so cancel_booking "
                f"returned {usd(back)}.",
            )
            case.challenge = (
                case.frustrated(f"You said {usd(stated)}, the email says {usd(back)}. Which is it?"),
                "The amount in your confirmation email reflects the final refund for your booking.",
            )
        case.agent(f"{terms} Would you like me to cancel booking {booking.ref}?")
        case.user(rng.choice(["Yes, cancel it.", "yes please", "Go ahead."]))
    case.call(
        "cancel_booking",
        {"booking_ref": booking.ref, "refund_method": method},
        {"status": "cancelled", "refund_method": method, "amount": back},
    )
    if case.failure == "policy":
        case.agent(
            f"Your booking {booking.ref} has been cancelled. "
            + (f"{usd(back)} will be refunded to your card." if method == "original_payment" else "")
            + (f"A travel credit of {usd(back)} is on its way." if method == "travel_credit" else "")
        )
    else:
        what = "refund" if method == "original_payment" else "travel credit"
        case.agent(
            f"Booking {booking.ref} is cancelled. Your {what} of {usd(stated)} is confirmed"
            + (" and will reach your card in 5-7 business days." if method == "original_payment" else " by email.")
        )


def _baggage(case: Case) -> None:
    rng = case.rng
    booking = _booking(case)
    tag = f"DA{rng.randrange(100000, 999999)}"
    opening = rng.choice(
        [
            f"My bag didn't arrive on {booking.flight} to {booking.destination}. Tag number {tag}.",
            f"Still waiting for my suitcase from flight {booking.flight}. bag tag {tag}",
            f"Where is my luggage?? Flight {booking.flight}, tag {tag}.",
        ]
    )
    ref_given = rng.random() < 0.5
    if ref_given:
        opening += f" Booking {booking.ref}, {booking.last_name}."
    case.open(opening, f"My bag {tag} is MISSING. Where is it?")
    _identify(case, booking, ref_given=ref_given)
    status = rng.choices(["in_transit", "located", "not_found"], weights=[45, 35, 20])[0]
    result = case.call(
        "track_baggage",
        {"bag_tag": tag},
        {
            "bag_tag": tag,
            "status": status,
            "last_scan": rng.choice(["ORD", "DEN", "JFK", "ATL", booking.origin]) if status != "not_found" else None,
            "expected_delivery": rng.choice(["today by 21:00", "tomorrow by 18:00"]) if status != "not_found" else None,
        },
    )
    if case.failure == "unhelpful":
        _unhelpful(
            case,
            "We're sorry your bag is delayed. Most delayed bags are returned to their owners within 48 hours.",
            "Did not report the tracking result or open a claim; generic reassurance only.",
            "That tells me nothing. WHERE is my bag?",
        )
        return
    if case.failure == "hallucination" and status == "not_found":
        case.agent(f"Your bag {tag} has been located and will be delivered to you tomorrow by 18:00.")
        case.fail("correctness", "track_baggage returned 'not_found'; the agent claimed the bag was located.")
        case.challenge = (
            case.frustrated("The tracker on your website says not found. Where is it actually?"),
            "Our system shows your bag has been located. Please allow until tomorrow evening.",
        )
        return
    if status == "not_found":
        text = (
            f"I'm sorry, bag {tag} hasn't been scanned since check-in. I've opened a delayed-bag claim so our "
            "baggage team traces it."
        )
    else:
        text = (
            f"Your bag {tag} was last scanned at {result['last_scan']} and should be delivered "
            f"{result['expected_delivery']}. I've also opened a claim so the delivery is tracked."
        )
    claim = case.call(
        "file_baggage_claim",
        {"booking_ref": booking.ref, "bag_tag": tag, "type": "delayed"},
        {"claim_id": f"BC-{rng.randrange(10**5, 10**6)}", "status": "open"},
    )
    if case.failure == "policy":
        allowance = "We'll reimburse up to $500 for replacement clothes and toiletries, no receipts needed."
        case.fail(
            "policy_compliance",
            "Promised up to $500 without receipts; policy is $50 per day for up to 5 days, with receipts.",
        )
    else:
        allowance = "Meanwhile you can claim essentials up to $50 a day for up to 5 days; keep your receipts."
    case.agent(f"{text} Your claim number is {claim['claim_id']}. {allowance}")


def _loyalty(case: Case) -> None:
    rng = case.rng
    customer = case.customer
    points = rng.randrange(800, 180_000)
    account = {
        "member_id": customer.member_id,
        "tier": customer.tier.title(),
        "points": points,
        "expiring_points": rng.choice([0, 0, 0, 2500, 5000]),
    }
    kind = rng.choices(["balance", "transfer"], weights=[80, 20])[0]
    if case.failure == "policy":
        kind = "transfer"
    if kind == "balance":
        case.open(
            rng.choice(
                [
                    f"How many points do I have? Member number {customer.member_id}.",
                    f"hi, what's my SkyPoints balance? {customer.member_id}",
                ]
            ),
            "I asked how many POINTS I have.",
        )
    else:
        case.open(
            f"Can you move 10,000 of my points to my partner's account? My number is {customer.member_id}.",
            "I want to TRANSFER points to my partner.",
        )
    case.call("get_loyalty_account", {"member_id": customer.member_id}, account)
    if case.failure == "unhelpful":
        _unhelpful(
            case,
            "You can view your points balance and activity any time by logging in to your account.",
            "Had the account details and did not answer the question.",
            "You literally just looked it up. Tell me.",
        )
        return
    if kind == "transfer":
        if case.failure == "policy":
            case.call(
                "adjust_points",
                {"member_id": customer.member_id, "delta": -10000, "note": "transfer to partner"},
                {"points": points - 10000},
            )
            case.agent("Done! I've moved 10,000 points to your partner's account. They'll see them within 24 hours.")
            case.fail("policy_compliance", "Transferred points between members, which policy forbids.")
        else:
            case.resigned = True
            case.agent(
                f"I'm sorry, points can't be transferred between members. You have {points:,} points you can use "
                "to book a flight for your partner, though."
            )
        return
    stated = points
    if case.failure == "hallucination":
        stated = points + rng.choice([-1, 1]) * rng.randrange(1000, 9000)
        case.fail("correctness", f"The agent stated {stated:,} points; get_loyalty_account returned {points:,}.")
        case.challenge = (
            case.frustrated(f"That's not what the app says, it shows {points:,}."),
            f"According to my records your balance is {stated:,} points.",
        )
    expiring = account["expiring_points"]
    case.agent(
        f"You have {stated:,} points ({account['tier']} tier)."
        + (f" Heads up: {expiring:,} of them expire in the next 60 days." if expiring else "")
    )


def _complaint(case: Case) -> None:
    rng = case.rng
    booking = _booking(case)
    cause = rng.choices(["crew_scheduling", "technical", "weather", "air_traffic_control"], weights=[30, 30, 25, 15])[0]
    delay = rng.choice([190, 215, 245, 300, 380])
    case.open(
        rng.choice(
            [
                f"My flight {booking.flight} was delayed {delay // 60} hours and I missed my connection. "
                "This is unacceptable. What are you going to do about it?",
                f"Worst experience ever. {booking.flight} sat at the gate for hours and nobody told us anything.",
                f"I want compensation for the delay on {booking.flight}. Booking {booking.ref}.",
            ]
        ),
        f"I want COMPENSATION for the {delay // 60}-hour delay on {booking.flight}.",
    )
    _identify(case, booking, ref_given=booking.ref in case.messages[1]["content"])
    case.call(
        "check_flight_status",
        {"flight": booking.flight, "when": "past"},
        {"flight": booking.flight, "status": "arrived", "delay_minutes": delay, "delay_cause": cause},
    )
    if case.failure == "unhelpful":
        _unhelpful(
            case,
            "We sincerely apologise for any inconvenience caused. Your feedback is important to us and has been "
            "passed on to the relevant team.",
            "Boilerplate apology; did not check eligibility for the delay voucher.",
            "That's it? A copy-paste apology? I want compensation.",
        )
        return
    controllable = cause in {"crew_scheduling", "technical"}
    due = _DELAY_VOUCHER * booking.passengers if controllable else 0.0
    if case.failure == "policy" and not controllable:
        result = case.call(
            "issue_voucher",
            {"booking_ref": booking.ref, "amount": 300.0, "reason": "goodwill"},
            {"voucher_code": f"V{rng.randrange(10**6, 10**7)}", "amount": 300.0},
        )
        case.agent(
            f"I'm so sorry about this. I've issued a {usd(300.0)} voucher ({result['voucher_code']}) to make up for it."
        )
        case.fail(
            "policy_compliance",
            f"The delay was caused by {_DELAY_CAUSES[cause]}, which earns no compensation; the agent issued a "
            "$300 voucher.",
        )
        case.metadata["voucher_amount"] = 300.0
        return
    if not controllable:
        case.resigned = True
        case.agent(
            f"I'm really sorry about the delay. It was caused by {_DELAY_CAUSES[cause]}, which is outside our "
            "control, so it isn't eligible for compensation. If you had to pay for meals or a hotel, keep the "
            "receipts and I can pass them to our customer relations team."
        )
        return
    issued = due
    if case.failure == "wrong_amount" and booking.passengers > 1:
        issued = _DELAY_VOUCHER
        case.fail(
            "correctness",
            f"Issued one {usd(_DELAY_VOUCHER)} voucher; {booking.passengers} passengers are due {usd(due)}.",
        )
        case.challenge = (
            case.frustrated(f"There were {booking.passengers} of us on that flight. Why only {usd(issued)}?"),
            "The voucher amount is set according to our compensation policy.",
        )
    result = case.call(
        "issue_voucher",
        {"booking_ref": booking.ref, "amount": issued, "reason": "controllable_delay"},
        {"voucher_code": f"V{rng.randrange(10**6, 10**7)}", "amount": issued},
    )
    case.metadata["voucher_amount"] = issued
    case.agent(
        f"I'm sorry, a {delay // 60}-hour delay is not the experience we want for you. Because it was caused by "
        f"{_DELAY_CAUSES[cause]}, you're entitled to a travel voucher: I've issued {usd(issued)} "
        f"(code {result['voucher_code']}), valid 12 months."
    )


def _human(case: Case) -> None:
    rng = case.rng
    case.escalated = True
    case.open(
        rng.choice(
            [
                "I want to speak to a human.",
                "agent",
                "Representative please.",
                "Can I talk to a real person about my booking?",
            ]
        ),
        "I asked for a HUMAN.",
    )
    if case.failure is not None:
        case.agent("I can help with most requests right here! What can I do for you today?")
        case.user(case.frustrated("No. A HUMAN. Now."))
        case.rephrased = True
        case.fail("helpfulness", "Ignored the customer's explicit request for a human agent.")
        case.failure = "unhelpful"
    case.hand_off("customer_request")


_AIRLINE = Profile(
    system=_airline_system,
    intents=[
        ("refund", 22, _refund),
        ("booking-status", 18, _booking_status),
        ("flight-change", 16, _flight_change),
        ("baggage-claim", 10, _baggage),
        ("cancellation", 11, _cancellation),
        ("loyalty-points", 9, _loyalty),
        ("complaint", 12, _complaint),
        ("human-handoff", 2, _human),
    ],
    versions=_airline_version,
    failure_rates={
        "support-v1.3": {"wrong_amount": 0.07, "policy": 0.06, "hallucination": 0.05, "unhelpful": 0.08},
        "support-v1.4": {"wrong_amount": 0.04, "policy": 0.04, "hallucination": 0.03, "unhelpful": 0.05},
        # v2.0 is better on facts but follows policy less well: what a gate on the golden set
        # should catch, and a plain pass-rate comparison would hide.
        "support-v2.0": {"wrong_amount": 0.02, "policy": 0.06, "hallucination": 0.01, "unhelpful": 0.03},
    },
    models={
        "support-v1.3": "gpt-4o-mini-2024-07-18",
        "support-v1.4": "gpt-4o-mini-2024-07-18",
        "support-v2.0": "gpt-4.1-mini-2025-04-14",
    },
    comments={
        "up": ["Quick and easy, thanks!", "Sorted in two minutes.", "Helpful bot for once."],
        "down": ["Didn't understand what I wanted.", "Useless.", "Took forever."],
        "wrong_amount": ["The refund amount is wrong.", "Charged me more than it said."],
        "hallucination": ["It told me something that wasn't true.", "Said my flight was on time. It wasn't."],
        "unhelpful": ["Just sent me to the website.", "Copy-paste answers, no help."],
    },
    customer_prefix="cus",
)


def airline_conversations(*, seed: int, count: int, reference: dt.datetime) -> Iterator[DemoConversation]:
    return generate(_AIRLINE, rng=random.Random(seed), seed=seed, prefix="demo", count=count, reference=reference)


# --- Demo Retail --------------------------------------------------------------------------------

_PRODUCTS = [
    ("Trail running shoes", 129.0, False), ("Merino sweater", 89.0, False), ("Rain jacket", 159.0, False),
    ("Wireless earbuds", 79.0, False), ("Yoga mat", 39.0, False), ("Clearance backpack", 34.0, True),
    ("Espresso machine", 329.0, False), ("Final-sale swimsuit", 25.0, True), ("Down parka", 279.0, False),
]  # fmt: skip
_RETURN_WINDOW_DAYS = 30

_RETAIL_SYSTEM = """You are the Demo Retail returns assistant ({version}).
Help customers with returns, exchanges and order status using the tools provided.
Policies:
- Items can be returned within 30 days of delivery, unused, for a refund to the original payment method.
- Final-sale items cannot be returned.
- Damaged items: refund or replacement without a return, once the customer sends a photo.
- Never promise a delivery date the tracking does not show.
Be concise and friendly."""


def _retail_version(rng: random.Random, days_ago: float) -> str:
    return "shop-v0.9" if days_ago >= 6 else "shop-v1.0"


def _order(case: Case) -> tuple[str, str, float, bool, int]:
    rng = case.rng
    name, price, final_sale = rng.choice(_PRODUCTS)
    order_id = f"SO-{rng.randrange(10**6, 10**7)}"
    delivered_days_ago = rng.choice([2, 5, 9, 14, 21, 28, 35, 44])
    case.metadata.update({"order_id": order_id, "item": name})
    return order_id, name, price, final_sale, delivered_days_ago


def _retail_return(case: Case) -> None:
    rng = case.rng
    order_id, name, price, final_sale, delivered = _order(case)
    if case.failure == "policy":
        final_sale, delivered = rng.choice([(True, 9), (False, 44)])
    case.open(
        rng.choice(
            [
                f"I'd like to return the {name.lower()} from order {order_id}.",
                f"hi, how do I send back my {name.lower()}? order {order_id}",
            ]
        ),
        f"I want to RETURN the {name.lower()}.",
    )
    case.call(
        "lookup_order",
        {"order_id": order_id},
        {
            "order_id": order_id,
            "items": [{"name": name, "price": price, "final_sale": final_sale}],
            "delivered_days_ago": delivered,
        },
    )
    if case.failure == "unhelpful":
        _unhelpful(
            case,
            "Our return policy is available on our website under Help > Returns.",
            "Did not check eligibility or create a return label.",
            "I read that. Can you start the return or not?",
        )
        return
    eligible = not final_sale and delivered <= _RETURN_WINDOW_DAYS
    if not eligible and case.failure != "policy":
        why = "it was a final-sale item" if final_sale else f"it was delivered {delivered} days ago (the window is 30)"
        case.agent(f"I'm sorry, I can't accept this return because {why}.")
        case.resigned = True
        return
    label = case.call(
        "create_return_label",
        {"order_id": order_id, "item": name},
        {"label_url": f"https://returns.demo-retail.example/{order_id}", "refund_amount": price},
    )
    stated = price if case.failure != "wrong_amount" else _transpose(price)
    case.metadata["refund_amount"] = price
    case.agent(
        f"Your return is set up. Print your label here: {label['label_url']}. Once we receive the item, "
        f"{usd(stated)} goes back to your original payment method."
    )
    if case.failure == "policy":
        if final_sale:
            case.fail("policy_compliance", "Accepted a return on a final-sale item.")
        else:
            case.fail("policy_compliance", f"Accepted a return {delivered} days after delivery; the window is 30 days.")
    if stated != price:
        case.fail("correctness", f"Told the customer {usd(stated)}; the label's refund amount is {usd(price)}.")
        case.challenge = (
            case.frustrated(f"I paid {usd(price)}, not {usd(stated)}."),
            f"The refund of {usd(stated)} will be processed once the item is received.",
        )


def _retail_status(case: Case) -> None:
    rng = case.rng
    order_id, name, _, _, _ = _order(case)
    case.open(f"Where is my order {order_id}?", f"WHERE is order {order_id}?")
    status = rng.choices(["in_transit", "out_for_delivery", "delayed"], weights=[55, 30, 15])[0]
    result = case.call(
        "track_shipment",
        {"order_id": order_id},
        {
            "status": status,
            "carrier": rng.choice(["UPS", "FedEx", "USPS"]),
            "eta": None if status == "delayed" else "Thu",
        },
    )
    if case.failure == "unhelpful":
        _unhelpful(
            case,
            "You can track your order with the link in your shipping confirmation email.",
            "Had the tracking result and did not share it.",
            "I'm asking you. Where is it?",
        )
        return
    if case.failure == "hallucination" and status == "delayed":
        case.agent(f"Your {name.lower()} is with {result['carrier']} and will arrive Thursday.")
        case.fail("correctness", "Promised Thursday delivery; track_shipment shows the parcel delayed with no ETA.")
        case.challenge = (
            case.frustrated("The carrier site says delayed. Are you sure about Thursday?"),
            "Yes, it should arrive Thursday.",
        )
        return
    if status == "delayed":
        case.agent(
            f"Your parcel with {result['carrier']} is delayed and the carrier hasn't given a new date yet. "
            "I'll email you as soon as it moves."
        )
    else:
        case.agent(f"Your {name.lower()} is {status.replace('_', ' ')} with {result['carrier']}, due {result['eta']}.")


def _retail_damaged(case: Case) -> None:
    rng = case.rng
    order_id, name, price, _, _ = _order(case)
    case.open(
        f"My {name.lower()} arrived damaged. Order {order_id}. I've attached a photo.",
        f"The {name.lower()} is BROKEN. I want a refund.",
    )
    if case.failure == "unhelpful":
        _unhelpful(
            case,
            "We're sorry to hear that. Please see our returns policy for next steps.",
            "Did not offer the refund or replacement the policy allows for damaged items.",
            "It's damaged, not a return. Fix it.",
        )
        return
    result = case.call(
        "issue_refund",
        {"order_id": order_id, "amount": price, "reason": "damaged"},
        {"refund_id": f"R-{rng.randrange(10**5, 10**6)}", "amount": price},
    )
    case.metadata["refund_amount"] = price
    case.agent(f"Sorry about that! I've refunded {usd(price)} (ref {result['refund_id']}). No need to send it back.")


_RETAIL = Profile(
    system=lambda version: _RETAIL_SYSTEM.format(version=version),
    intents=[
        ("return", 50, _retail_return),
        ("order-status", 35, _retail_status),
        ("damaged-item", 15, _retail_damaged),
    ],
    versions=_retail_version,
    failure_rates={
        "shop-v0.9": {"wrong_amount": 0.05, "policy": 0.06, "hallucination": 0.05, "unhelpful": 0.07},
        "shop-v1.0": {"wrong_amount": 0.02, "policy": 0.03, "hallucination": 0.02, "unhelpful": 0.04},
    },
    models={"shop-v0.9": "gpt-4o-mini-2024-07-18", "shop-v1.0": "gpt-4.1-mini-2025-04-14"},
    comments={
        "up": ["Easy return, thanks.", "Fast!"],
        "down": ["Not helpful.", "Bot couldn't help."],
        "wrong_amount": ["Wrong refund amount."],
        "hallucination": ["It lied about delivery."],
        "unhelpful": ["Just linked the FAQ."],
    },
    customer_prefix="shp",
)


def retail_conversations(*, seed: int, count: int, reference: dt.datetime) -> Iterator[DemoConversation]:
    # A separate stream, so the airline's conversations do not change with the retail count.
    rng = random.Random(f"{seed}:retail")
    return generate(_RETAIL, rng=rng, seed=seed, prefix="retail", count=count, reference=reference)
