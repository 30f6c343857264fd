"""Unknown names in the configuration, each refused with the nearest known one.

A misspelt key (`timeout_secs`) would otherwise be ignored and its default used in silence.
The known names always come from the definitions that read them (the settings dataclasses,
an adapter's declared keys, the variables the loader asked for), never from a copy.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Iterator, Mapping


def unknown_names(
    where: str, names: Iterable[str], known: Collection[str], what: str = "key"
) -> list[str]:
    """One problem per name outside `known`, with a did-you-mean or the known list."""
    return [
        f"{where}{name}: unknown {what}; {_hint(name, known)}"
        for name in names
        if name not in known
    ]


def _hint(name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    if not known:
        return "none are allowed here"
    return f"known: {', '.join(sorted(known))}"


class ReadRecorder(Mapping[str, str]):
    """A read-only view of a mapping that remembers every name it was asked for.

    Wrapped around the environment while settings load, it tells afterwards which of the
    variables set were never read: those are typos or leftovers.
    """

    def __init__(self, inner: Mapping[str, str]) -> None:
        """Wrap `inner`; nothing has been asked for yet."""
        self._inner = inner
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        """The value, noting that `name` is a known name."""
        self.asked.add(name)
        return self._inner[name]

    def __contains__(self, name: object) -> bool:
        """Membership, noting the name like a read."""
        if isinstance(name, str):
            self.asked.add(name)
        return name in self._inner

    def __iter__(self) -> Iterator[str]:
        """The wrapped mapping's names."""
        return iter(self._inner)

    def __len__(self) -> int:
        """The wrapped mapping's size."""
        return len(self._inner)
