"""Import a module if it exists (domains grow their modules over time)."""
import importlib
from types import ModuleType


def import_optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise
