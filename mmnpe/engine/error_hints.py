"""Readable errors for two mistakes mmengine reports poorly.

- A config naming a component no registry holds: mmengine says ``X is not
  in the mmseg::model registry`` but not what *is* there. The error is
  re-raised naming the nearest registered names (``difflib``), so a typo
  such as ``PEMFCNHaed`` answers with ``PEMFCNHead``.
- A checkpoint holding a pickled object outside the ``weights_only``
  allowlist (see :mod:`mmnpe.engine.safe_globals`): torch refuses it (the
  object is never built, so its code never runs) but then suggests
  ``weights_only=False``, which would run it. The error is re-raised
  naming the file and saying not to do that.
"""
import contextlib
import difflib
import pickle
import re
from typing import Iterator, List, Optional

import mmengine.registry as mmengine_registry
from mmengine.registry import DefaultScope, Registry

# mmengine.registry.build_functions: "X is not in the mmseg::model registry"
# (build_from_cfg) or "X is not in the parameter scheduler registry" (runners,
# schedulers: no scope, the default one applies).
_NOT_IN_REGISTRY = re.compile(
    r"(?P<name>[\w.\-]+) is not in the (?:(?P<scope>[\w.\-]+)::)?"
    r"(?P<registry>[\w ]+?) registry")


class UnknownComponentError(KeyError):
    """A config names a type that no registry in reach holds.

    A ``KeyError`` as mmengine raises, with a readable ``str``.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a pickled object outside the allowlist."""


def _registries() -> Iterator[Registry]:
    """Every registry below mmengine's root ones (mmseg, mmpretrain ...)."""
    seen = set()
    stack = [
        r for r in vars(mmengine_registry).values() if isinstance(r, Registry)
    ]
    while stack:
        registry = stack.pop()
        if id(registry) in seen:
            continue
        seen.add(id(registry))
        yield registry
        stack.extend(registry.children.values())


def _find_registry(scope: Optional[str], name: str) -> Optional[Registry]:
    if scope is None:
        current = DefaultScope.get_current_instance()
        scope = current.scope_name if current is not None else 'mmengine'
    named = [r for r in _registries() if r.name == name]
    for registry in named:
        if registry.scope == scope:
            return registry
    roots = [r for r in named if r.parent is None]
    return roots[0] if roots else None


def close_registered_names(name: str,
                           registry: Registry,
                           n: int = 5,
                           cutoff: float = 0.6) -> List[str]:
    """Registered names nearest to ``name`` (case-insensitive ``difflib``).

    Candidates are what ``registry`` can build: its own names and its
    ancestors' bare, the other scopes' as ``scope.Name`` (mmengine resolves
    both forms).

    Args:
        name (str): The unknown type name.
        registry (Registry): The registry the name was looked up in.
        n (int): At most this many names. Defaults to 5.
        cutoff (float): Minimal similarity in [0, 1]. Defaults to 0.6.

    Returns:
        list[str]: The closest names first.
    """
    candidates = {}
    reachable = set()
    node = registry
    while node is not None:
        reachable.add(id(node))
        for key in node.module_dict:
            candidates.setdefault(key, key)
        root = node
        node = node.parent
    for other in _registries_below(root):
        if id(other) in reachable or other.scope is None:
            continue
        for key in other.module_dict:
            candidates.setdefault(f'{other.scope}.{key}', key)
    bare = name.split('.')[-1].lower()
    scored = []
    for shown, key in candidates.items():
        ratio = difflib.SequenceMatcher(None, bare, key.lower()).ratio()
        if ratio >= cutoff:
            # Own scope first among equals: unprefixed names sort lower.
            scored.append((-ratio, '.' in shown, shown))
    return [shown for _, _, shown in sorted(scored)[:n]]


def _registries_below(root: Registry) -> Iterator[Registry]:
    stack = [root]
    while stack:
        registry = stack.pop()
        yield registry
        stack.extend(registry.children.values())


def explain_unknown_component(err: KeyError) -> Optional[KeyError]:
    """The readable error for mmengine's "not in the registry" KeyError, or
    None when ``err`` is another KeyError."""
    message = str(err.args[0]) if err.args else ''
    match = _NOT_IN_REGISTRY.search(message)
    if match is None:
        return None
    name = match.group('name')
    registry = _find_registry(match.group('scope'), match.group('registry'))
    if registry is None:
        return None
    scope = registry.scope
    close = close_registered_names(name, registry)
    if close:
        hint = 'the nearest registered names are ' + ', '.join(
            repr(c) for c in close)
    else:
        hint = ('no registered name is close; is the module that registers '
                'it in custom_imports?')
    context = message[:match.start()].rstrip(" :'\"")
    where = f' (while building {context})' if context else ''
    return UnknownComponentError(
        f'type={name!r} is not in the {scope}::{registry.name} registry'
        f'{where}; {hint}')


def explain_unsafe_checkpoint(err: pickle.UnpicklingError,
                              path: Optional[str]) -> Optional[Exception]:
    """The readable error for a ``weights_only`` refusal, or None."""
    message = str(err)
    if 'Weights only load failed' not in message:
        return None
    # "Unsupported global: GLOBAL x.Y was not an allowed global" or
    # "Trying to load unsupported GLOBAL posix.system whose module ...".
    detail = re.search(r'GLOBAL ([\w.]+)', message)
    culprit = detail.group(1) if detail else 'an object'
    return UnsafeCheckpointError(
        f'checkpoint {path!r} holds {culprit}, a pickled object outside '
        'the types mmengine writes into checkpoints; it was refused and '
        'not executed. Do not load it with weights_only=False unless you '
        'trust its source (that would run its code).')


@contextlib.contextmanager
def error_hints(checkpoint: Optional[str] = None) -> Iterator[None]:
    """Re-raise the two errors above readably; anything else untouched.

    Wrap building the Runner *and* running it: mmengine builds data sets,
    transforms, optimisers and evaluators lazily. The original exception
    stays chained (``raise ... from``), so the traceback still shows the
    frame where the build failed.

    Args:
        checkpoint (str, optional): The checkpoint the run loads (named in
            the unsafe-checkpoint error).
    """
    try:
        yield
    except KeyError as err:
        readable = explain_unknown_component(err)
        if readable is None:
            raise
        raise readable from err
    except pickle.UnpicklingError as err:
        readable = explain_unsafe_checkpoint(err, checkpoint)
        if readable is None:
            raise
        raise readable from err
