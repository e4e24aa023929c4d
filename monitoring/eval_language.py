"""Measure language detectors against the ``language`` column of ticket files, per language.

    python -m monitoring.eval_language ../shared/data/tickets [--detectors server,wordlist,py3langid-5,lingua]

``server`` is :func:`server.language.guess_language` (what the prediction log and the drift reference use);
``wordlist`` is the function-word guess it replaced (kept here only for the comparison); ``py3langid-5`` is
py3langid restricted to the five training languages (``server`` is py3langid unrestricted); ``lingua`` is
lingua-language-detector restricted to the five languages, measured only where it is importable (it is not a
project dependency: ~96 MB installed, Python >= 3.12 for its newest release).
The text is what the server sees: subject and body joined by a newline.
Prints a Markdown table: accuracy per language, overall, ``unknown`` share and microseconds per call.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from server.language import LANGUAGES, guess_language

_WORD = re.compile(r"[^\W\d_]+")


# The function-word lists of the detector server/language.py used before py3langid (for the comparison only).
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_FUNCTION_WORDS: Mapping[str, frozenset[str]] = {
    "en": _words(
        "the and is are to of my i we you it this that with for not have has please be on in can our your"
        " was will would could there from been an any"
    ),
    "de": _words(
        "der die das und ist nicht ich wir sie mit für ein eine auf bei den dem des zu von bitte sind haben"
        " wird kann unser unsere ihre ihr auch dass werden im wurde wäre sehr"
    ),
    "es": _words(
        "el los las y es en por con una del mi nuestro nuestra están hemos gracias pero su lo al muy estoy "
        "nuestros hay tengo puede"
    ),
    "fr": _words(
        "le les et est des une pour avec dans nous vous je pas ne sur au aux du mon notre votre être merci"
        " il cette ce sont avons bonjour"
    ),
    "pt": _words(
        "o os e é em com uma um do da dos das não no na nossa nosso meu minha estão obrigado mas sua seu"
        " ao pelo pela você estou tenho"
    ),
}


def wordlist_guess(text: str, min_hits: int = 2, max_words: int = 400) -> str:
    """The old guess: the language with most function-word hits in the first ``max_words`` words."""
    counts = dict.fromkeys(_FUNCTION_WORDS, 0)
    for n, match in enumerate(_WORD.finditer(text.lower())):
        if n >= max_words:
            break
        for lang, words in _FUNCTION_WORDS.items():
            if match.group() in words:
                counts[lang] += 1
    ranked = sorted(counts.values(), reverse=True)
    if ranked[0] < min_hits or ranked[0] == ranked[1]:
        return "unknown"
    return max(counts, key=lambda lang: counts[lang])


def _py3langid_five() -> Callable[[str], str]:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
    identifier.set_languages(list(LANGUAGES))
    return lambda text: str(identifier.classify(text)[0])


def _lingua() -> Callable[[str], str]:
    lingua = importlib.import_module("lingua")
    names = {"en": "ENGLISH", "de": "GERMAN", "es": "SPANISH", "fr": "FRENCH", "pt": "PORTUGUESE"}
    detector = lingua.LanguageDetectorBuilder.from_languages(
        *(getattr(lingua.Language, names[code]) for code in LANGUAGES)
    ).build()
    codes = {getattr(lingua.Language, name): code for code, name in names.items()}

    def detect(text: str) -> str:
        found = detector.detect_language_of(text)
        return codes.get(found, "unknown") if found is not None else "unknown"

    return detect


DETECTORS: dict[str, Callable[[], Callable[[str], str]]] = {
    "server": lambda: guess_language,
    "wordlist": lambda: wordlist_guess,
    "py3langid-5": _py3langid_five,
    "lingua": _lingua,
}


def load_tickets(paths: Sequence[Path]) -> pd.DataFrame:
    files = [f for p in paths for f in (sorted(p.glob("*.csv")) if p.is_dir() else [p])]
    frames = []
    for path in files:
        frame = pd.read_csv(path, usecols=lambda c: c in {"subject", "body", "language"})
        if "language" in frame and "body" in frame:
            frame["source"] = path.name
            frames.append(frame)
    if not frames:
        raise SystemExit(f"no CSV with body and language columns under {[str(p) for p in paths]}")
    data = pd.concat(frames, ignore_index=True)
    subject = data["subject"].fillna("").astype(str).str.strip() if "subject" in data else ""
    body = data["body"].fillna("").astype(str).str.strip()
    data["text"] = (subject + "\n" + body).str.strip()
    return data[data["text"] != ""].reset_index(drop=True)


def measure(data: pd.DataFrame, detect: Callable[[str], str]) -> dict[str, float]:
    texts = data["text"].tolist()
    started = time.perf_counter()
    guesses = [detect(t) for t in texts]
    elapsed = time.perf_counter() - started
    truth = data["language"].astype(str)
    right = pd.Series(guesses) == truth
    result = {f"acc_{lang}": float(right[truth == lang].mean()) for lang in sorted(set(truth))}
    result["acc_all"] = float(right.mean())
    result["unknown"] = float((pd.Series(guesses) == "unknown").mean())
    result["us_per_call"] = elapsed / max(1, len(texts)) * 1e6
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitoring.eval_language", description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="CSV files or directories of them")
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--exclude", default="german_normalized", help="skip files whose name contains this")
    args = parser.parse_args(argv)
    data = load_tickets(args.paths)
    if args.exclude:
        data = data[~data["source"].str.contains(args.exclude)].reset_index(drop=True)
    counts = {str(k): int(v) for k, v in data["language"].value_counts().items()}
    sys.stdout.write(f"{len(data)} tickets: {counts}\n\n")
    languages = sorted(counts)
    header = ["detector", *languages, "all", "unknown", "us/call"]
    sys.stdout.write("| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n")
    for name in args.detectors.split(","):
        try:
            detect = DETECTORS[name]()
        except ImportError as exc:
            sys.stdout.write(f"| {name} | not installed ({exc}) |\n")
            continue
        r = measure(data, detect)
        cells = [f"{r[f'acc_{lang}']:.3f}" for lang in languages]
        cells += [f"{r['acc_all']:.3f}", f"{r['unknown']:.3f}", f"{r['us_per_call']:.0f}"]
        sys.stdout.write(f"| {name} | " + " | ".join(cells) + " |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
