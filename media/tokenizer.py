"""A word-level tokenizer over the dataset's vocabulary, saved in Hugging Face's format.

open_clip's default BPE tokenizer has 49,408 tokens; their embedding table alone would be larger
than the whole tiny CLIP. This one has the caption words plus four specials, loads with
`transformers.AutoTokenizer.from_pretrained(folder)` (which is how open_clip's `HFTokenizer`
loads it from a `local-dir:` model) and ends every text with `[EOS]`, where the text tower pools.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel

from media.dataset import vocabulary

PAD, UNK, EOS = "[PAD]", "[UNK]", "[EOS]"
SPECIALS = (PAD, UNK, EOS)
PAD_ID, UNK_ID, EOS_ID = 0, 1, 2


def build_tokenizer(words: list[str] | None = None) -> Tokenizer:
    """A lower-casing word-level tokenizer: specials first, then the words in sorted order."""
    vocab = {token: index for index, token in enumerate([*SPECIALS, *sorted(set(words or vocabulary()))])}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, EOS_ID)])
    return tokenizer


def save_tokenizer(folder: Path, tokenizer: Tokenizer, context_length: int) -> None:
    """Writes the tokenizer as a `PreTrainedTokenizerFast` folder."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD,
        unk_token=UNK,
        eos_token=EOS,
        model_max_length=context_length,
        padding_side="right",
        truncation_side="right",
    )
    fast.save_pretrained(str(folder))
