"""A request for one generated image, as every layer sees it (the CLI, the API, the market
watcher, the journal and the generator), and the error of a request that cannot work as given."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from agents.core.errors import PermanentError

#: The longest prompt (and negative prompt) taken, in characters, from every door.
MAX_PROMPT_CHARS = 1_000


class GeneratorError(PermanentError, ValueError):
    """A generation request or pipeline set-up that cannot work as given."""


@dataclass(frozen=True)
class GenerationRequest:
    """One image to make. `parents` are the content digests of assets it derives from."""

    prompt: str
    seed: int
    negative_prompt: str = ""
    steps: int = 25
    guidance: float = 1.5  # the shipped tiny model's best; full-size models want more (SD: 7.5)
    height: int | None = None
    width: int | None = None
    parents: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_text(self.prompt, "the prompt")
        check_text(self.negative_prompt, "the negative prompt")
        if not self.prompt.strip():
            raise GeneratorError("the prompt is empty")
        if not 0 <= self.seed < 2**63:
            raise GeneratorError(f"seed must be in [0, 2^63), got {self.seed}")
        if not 1 <= self.steps <= 1_000:
            raise GeneratorError(f"steps must be in [1, 1000], got {self.steps}")
        if not 0.0 <= self.guidance <= 50.0:
            raise GeneratorError(f"guidance must be in [0, 50], got {self.guidance}")
        for side in (self.height, self.width):
            if side is not None and (side < 8 or side % 8):
                raise GeneratorError(f"height and width must be multiples of 8, at least 8; got {side}")

    def signature(self) -> tuple[int, float, int | None, int | None]:
        """Requests with the same signature can share a pipeline call."""
        return (self.steps, self.guidance, self.height, self.width)


def check_text(text: object, name: str) -> None:
    """Refuse what no tokenizer should see: a non-string, text that is not valid Unicode (a lone
    surrogate from JSON's `\\ud800`, or from undecodable command-line bytes), control characters
    other than tab and newline, and more than `MAX_PROMPT_CHARS` characters."""
    if not isinstance(text, str):
        raise GeneratorError(f"{name} must be text, got {type(text).__name__}")
    if len(text) > MAX_PROMPT_CHARS:
        raise GeneratorError(f"{name} has {len(text)} characters; at most {MAX_PROMPT_CHARS} are taken")
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category == "Cs" and 0xDC80 <= ord(char) <= 0xDCFF:  # Python's surrogateescape of a byte
            raise GeneratorError(f"{name} is not valid UTF-8: byte 0x{ord(char) - 0xDC00:02x} at character {index}")
        if category == "Cs":
            raise GeneratorError(f"{name} is not valid Unicode: a lone surrogate {char!r} at character {index}")
        if category == "Cc" and char not in "\t\n":
            raise GeneratorError(f"{name} has a control character {char!r} at character {index}")
