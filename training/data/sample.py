"""A deterministic generator of the embedded sample ``data/sample/tickets.csv`` (our own synthetic tickets).

``python -m training.data sample`` rewrites the file; a test checks the committed file is byte for byte what
this module produces. It is a smoke sample for the quickstart, never a quality benchmark.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from pathlib import Path

from training.data.sample_phrases import PHRASES, PRODUCTS, TOPICS
from training.utils import atomic_write

SAMPLE_PATH = Path("data/sample/tickets.csv")
SAMPLE_COLUMNS = ("subject", "body", "answer", "type", "queue", "priority", "language")
#: Tickets per language and priority (low, medium, high): 60 per language, 300 in all.
DEFAULT_PER_PRIORITY = {"low": 18, "medium": 21, "high": 21}
DEFAULT_SEED = 20261129


@dataclass(frozen=True)
class SampleTicket:
    subject: str
    body: str
    answer: str
    type: str
    queue: str
    priority: str
    language: str

    def row(self) -> tuple[str, ...]:
        return tuple(getattr(self, column) for column in SAMPLE_COLUMNS)


def generate_sample(
    seed: int = DEFAULT_SEED, per_priority: dict[str, int] | None = None, languages: tuple[str, ...] = ()
) -> list[SampleTicket]:
    """Make the tickets: every language x priority gets its count, bodies are unique, order is shuffled."""
    rng = random.Random(seed)
    counts = per_priority or DEFAULT_PER_PRIORITY
    tickets: list[SampleTicket] = []
    seen: set[str] = set()
    for language in languages or tuple(PHRASES):
        for priority, count in counts.items():
            made = 0
            for _attempt in range(count * 50):
                if made == count:
                    break
                ticket = _make_ticket(rng, language, priority)
                if ticket.body in seen:
                    continue
                seen.add(ticket.body)
                tickets.append(ticket)
                made += 1
            if made < count:
                raise ValueError(
                    f"could not make {count} distinct {language}/{priority} tickets; lower the count"
                )
    rng.shuffle(tickets)
    return tickets


def _make_ticket(rng: random.Random, language: str, priority: str) -> SampleTicket:
    phrases = PHRASES[language]
    product = rng.choice(PRODUCTS)
    topic_index = rng.randrange(len(TOPICS))
    queue, ticket_type = TOPICS[topic_index]
    topic_word, issues = phrases["topics"][topic_index]
    cues = phrases["cues"][priority]
    sentences = [rng.choice(issues).format(p=product), rng.choice(cues["sentences"])]
    if rng.random() < 0.6:
        sentences.append(rng.choice(phrases["details"]))
    body = "\n\n".join(
        [rng.choice(phrases["greetings"]), " ".join(sentences), rng.choice(phrases["closings"]) + "\n<name>"]
    )
    # A few tickets have no subject, as in the real dataset.
    subject = "" if rng.random() < 0.05 else rng.choice(cues["subjects"]).format(p=product, t=topic_word)
    return SampleTicket(
        subject=subject,
        body=body,
        answer=phrases["answer"].format(p=product),
        type=ticket_type,
        queue=queue,
        priority=priority,
        language=language,
    )


def render_csv(tickets: list[SampleTicket]) -> str:
    """The CSV text of the tickets: header, LF line ends, real newlines inside quoted fields."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(SAMPLE_COLUMNS)
    writer.writerows(ticket.row() for ticket in tickets)
    return buffer.getvalue()


def write_sample(path: Path = SAMPLE_PATH, seed: int = DEFAULT_SEED) -> Path:
    """(Re)write the sample file atomically; return its path."""
    text = render_csv(generate_sample(seed))
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8", newline=""))
    return path
