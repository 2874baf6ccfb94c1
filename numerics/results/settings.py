"""The settings of a run's dynamics: one :class:`RunSettings` object instead of long keyword lists.

Every solver (:func:`numerics.integrate`, :func:`numerics.simulate`, :func:`numerics.simulate_sde`,
:func:`numerics.simulators.overlap_chain.simulate_overlaps`) and the evaluation functions built on
the same dynamics (:func:`numerics.rhs`, :func:`numerics.increment_covariance`, ...) take a
``settings=RunSettings(...)`` argument; their keyword arguments ``eta=``, ``model=``, ... remain the
convenient form and build one (:meth:`RunSettings.merged`). Every result carries the settings it
was made with (``IntegrationResult.settings``), and :mod:`numerics.results.persist` saves and
loads them (:meth:`RunSettings.to_dict`, :meth:`RunSettings.from_dict`).

The class lives with the results (not with the ODE solver) because a result holds it and the
persistence layer rebuilds it: both sit below the solvers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from numerics.core.validation import as_real_array, check_flag, check_int, check_scalar
from numerics.results.encoding import model_from_spec, model_spec


def _readout_array(value: Any, name: str) -> np.ndarray | None:
    # float64, at least 1-d, finite, and read-only: a frozen settings object must not change under its hash
    if value is None:
        return None
    array = np.array(as_real_array(value, name, ndim_min=1), dtype=np.float64, copy=True)
    array.setflags(write=False)
    return array


def _unit_readouts(value: Any, name: str, width: int, width_name: str) -> np.ndarray:
    # a scalar on every unit, or one value per unit
    array = as_real_array(value, name, ndim_min=0)
    if array.ndim > 1 or (array.ndim == 1 and array.shape[0] != width):
        raise ValueError(f"{name} must be a scalar or have shape ({width_name},) = ({width},), got shape {array.shape}")
    return np.broadcast_to(array, (width,))


def _check_sam_combination(checked: Mapping[str, Any]) -> None:
    # the sharpness-aware drift is derived for plain steps of the first layer with scalar readouts
    others = [name for name, refused in (
        ("spherical=True", checked["spherical"]), ("eta_a > 0", checked["eta_a"] > 0),
        ("readout vectors a", checked["a"] is not None), ("readout vectors b", checked["b"] is not None),
    ) if refused]
    if others:
        raise ValueError(
            f"sam_radius = {checked['sam_radius']} (sharpness-aware steps) is not derived together with "
            f"{', '.join(others)}: use the model's scalar readouts, untrained, without the sphere"
        )


def _array_key(array: np.ndarray | None) -> tuple | None:
    # shape and values; -0.0 and 0.0 compare (and hash) equal, as the values do
    return None if array is None else (array.shape, tuple(array.ravel().tolist()))


@dataclass(frozen=True, eq=False, repr=False)
class RunSettings:
    """The settings of the learning dynamics shared by every solver and analysis of a run.

    Attributes
    ----------
    eta : float
        Learning rate of the first layer (> 0; required, there is no default learning rate).
    model : derive.Model or None
        The model; ``None`` is the paper's model (docs/model.md).
    second_order : bool
        Keep the ``eta**2`` term of the dynamics (default) or take the gradient-flow limit
        (the SGD simulators always have it: they refuse ``False``).
    batch_size : int
        Mini-batch size ``B >= 1``: each step averages the update over ``B`` fresh samples;
        ``alpha`` counts steps / N.
    eta_a : float
        Learning rate of the student readout (>= 0). ``0.0``, the default, means a fixed readout.
    a : array, shape (p,) or (B, p), or None
        Per-unit student readouts (the start when ``eta_a > 0``); ``None``: the model's scalar
        readout on every unit. Stored as a read-only float64 array.
    b : array, shape (k,) or (B, k), or None
        Per-unit teacher readouts; ``None``: the model's.
    spherical : bool
        Spherical (projected) SGD: after every step each student vector is renormalised to
        its norm at the start, so every ``Q_jj`` keeps its start value (``Q_jj = 1`` for
        ``|w_j|^2 = N``; the start sets the radius). Default ``False`` (docs/model.md). Taken by
        the ODE, the weight simulator, the exact overlap chain and the SDE.
    readout_decay : float
        Weight decay ``kappa_a >= 0`` of the trained student readout: each step also moves
        ``a_j`` by ``-(eta_a kappa_a / N) a_j``, so ``da_j/dalpha`` gains ``-eta_a kappa_a a_j``
        (docs/model.md). Needs a trained readout (``eta_a > 0``) when nonzero.
    sam_radius : float
        Sharpness-aware (SAM) steps, ``rho >= 0``: each sample's gradient is taken at the same
        sample's ascent point ``w_j - rho (eta / sqrt N) E_j x`` (``rho`` in units of the SGD step;
        ``0.0``, the default, is plain SGD; docs/model.md). Taken by the ODE (polynomial models with
        scalar readouts: ``c x**2 + c0`` at any width, others at small widths) and the weight simulator;
        not with ``spherical``, readout vectors or a trained readout; the overlap chain, the SDE and the
        increment covariance refuse it.
    leading_order_noise : bool
        Keep only the leading part of the increment covariance (``eta**2`` in ``QQ, QR, RR``): the
        covariance as with ``second_order=False``, the drift as ``second_order`` says. Default
        ``False``: with ``second_order`` the covariance has its ``eta**3`` and ``eta**4`` parts
        (polynomial models, erf networks up to ``p + k = 8`` units, relu networks up to
        ``p + k = 5``). For erf networks those parts cost 20x to 250x the leading order from
        ``p + k = 4`` to 8 (``python -m bench --only erf_higher``), for relu networks a few times
        the leading order (``python -m bench --only relu_higher``). Read by the increment
        covariance, the SDE and ``plateau_noise``; the ODE and the exact simulators have no
        covariance to truncate.

    Notes
    -----
    These are the only defaults of these settings: the solvers take them as
    ``**setting_overrides`` and never repeat them in their signatures. Equality and the hash
    compare every field, the readout vectors by shape and value, so settings can key caches and
    be compared after a save/load round trip.

    Adding a setting touches this class and the code that uses it, and nothing else. A weight
    decay that overrides the model's, say, is one field with its default and check::

        weight_decay: float | None = None          # None: the model's kappa

        # in __post_init__
        if self.weight_decay is not None:
            object.__setattr__(self, "weight_decay",
                               check_scalar(self.weight_decay, "weight_decay", nonnegative=True))

    after which ``integrate(..., weight_decay=0.1)``, ``simulate(..., weight_decay=0.1)`` and
    ``RunSettings(eta=0.5, weight_decay=0.1)`` are accepted, stored in every result and
    persisted (:meth:`to_dict` walks the fields), and only the right-hand sides that read
    ``settings.weight_decay`` change.

    Examples
    --------
    >>> settings = RunSettings(eta=0.5, batch_size=4)
    >>> settings.replace(eta=0.25)
    RunSettings(eta=0.25, batch_size=4)
    """

    eta: float
    model: Any = None
    second_order: bool = True
    batch_size: int = 1
    eta_a: float = 0.0
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    spherical: bool = False
    readout_decay: float = 0.0
    sam_radius: float = 0.0
    leading_order_noise: bool = False

    def __post_init__(self) -> None:
        checked = {
            "eta": check_scalar(self.eta, "eta", positive=True),
            "second_order": check_flag(self.second_order, "second_order"),
            "batch_size": check_int(self.batch_size, "batch_size", minimum=1),
            "eta_a": check_scalar(self.eta_a, "eta_a", nonnegative=True),
            "a": _readout_array(self.a, "a"),
            "b": _readout_array(self.b, "b"),
            "spherical": check_flag(self.spherical, "spherical"),
            "readout_decay": check_scalar(self.readout_decay, "readout_decay", nonnegative=True),
            "sam_radius": check_scalar(self.sam_radius, "sam_radius", nonnegative=True),
            "leading_order_noise": check_flag(self.leading_order_noise, "leading_order_noise"),
        }
        if checked["sam_radius"]:
            _check_sam_combination(checked)
        if checked["readout_decay"] and not checked["eta_a"]:
            raise ValueError(
                f"readout_decay = {checked['readout_decay']} acts on a trained student readout: set eta_a > 0 "
                "(with eta_a = 0 the readout is fixed and the decay would be ignored)"
            )
        if self.model is not None and not hasattr(self.model, "codegen_hash"):
            raise ValueError(f"model must be a derive.Model or None, got {type(self.model).__name__}")
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the settings, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The default of every setting that has one (``eta`` has none)."""
        return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}

    @classmethod
    def merged(cls, settings: RunSettings | None, overrides: Mapping[str, Any], where: str) -> RunSettings:
        """``settings`` with the keyword ``overrides`` applied: how a solver reads its settings.

        Parameters
        ----------
        settings : RunSettings or None
            The settings passed (``None``: the defaults; ``eta`` must then be among ``overrides``).
        overrides : mapping
            The solver's keyword arguments naming settings.
        where : str
            The solver's name, for the messages.

        Raises
        ------
        TypeError
            A keyword that is not a setting (the message names it and lists the settings), or
            no learning rate.
        ValueError
            ``settings`` that is not a :class:`RunSettings`, or an invalid value (named).
        """
        cls._refuse_unknown(overrides, f"{where}() got unexpected keyword argument(s)")
        if settings is None:
            if "eta" not in overrides:
                raise TypeError(f"{where}() needs the learning rate: eta=... or settings=RunSettings(eta=...)")
            return cls(**overrides)
        if not isinstance(settings, cls):
            raise ValueError(f"settings must be a RunSettings or None, got {type(settings).__name__}")
        return settings.replace(**overrides) if overrides else settings

    @classmethod
    def values(cls, settings: RunSettings | None, overrides: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Every setting as a plain dict, ``settings`` (or the defaults) with ``overrides`` applied, unvalidated.

        For evaluation functions (:func:`numerics.rhs`, ...) that check their inputs themselves and
        accept what a run cannot have (``eta = 0``); ``eta`` is ``None`` when neither gives it.
        Unknown names raise ``TypeError`` as in :meth:`merged`.
        """
        cls._refuse_unknown(overrides, f"{where}() got unexpected keyword argument(s)")
        if settings is None:
            return {"eta": None, **_DEFAULTS, **overrides}
        if not isinstance(settings, cls):
            raise ValueError(f"settings must be a RunSettings or None, got {type(settings).__name__}")
        return {name: getattr(settings, name) for name in cls.field_names()} | dict(overrides)

    @classmethod
    def _refuse_unknown(cls, names: Any, what: str) -> None:
        unknown = sorted(set(names) - set(cls.field_names()))
        if unknown:
            raise TypeError(f"{what} {', '.join(map(repr, unknown))}; the settings are {', '.join(cls.field_names())}")

    @classmethod
    def mean_field(
        cls, p: int, k: int, eta: float, *, eta_a: float = 0.0, student_readout: Any = 1.0,
        teacher_readout: Any = 1.0, **others: Any,
    ) -> RunSettings:
        """The mean-field scaling: ``f = (1/p) sum_j a~_j sigma(lambda_j)`` with per-unit learning rates ``p eta``.

        The mean-field literature writes the student as ``(1/p) sum_j a~_j sigma(w_j . x / sqrt N)``
        with readouts ``a~_j`` of order one (the teacher likewise with ``1/k``), and gives every
        unit an SGD step of order one: the first-layer learning rate is ``p eta`` and the readout's
        ``p eta_a``, against gradients that carry the ``1/p``. In wickode's convention
        (docs/model.md: ``f = sum_j a_j sigma(lambda_j)``, ``w_j += (eta / sqrt N) (y - f) a_j
        sigma'(lambda_j) x``, ``a_j += (eta_a / N) (y - f) sigma(lambda_j)``) that is

            a = a~ / p,   b = b~ / k,   eta = p eta_mf,   eta_a = eta_a_mf / p.

        Parameters
        ----------
        p, k : int
            Student and teacher widths.
        eta, eta_a : float
            The mean-field learning rates ``eta_mf`` (first layer, > 0) and ``eta_a_mf`` (readout,
            >= 0; 0 keeps the readout fixed).
        student_readout, teacher_readout : float or array, shapes (p,), (k,)
            The order-one readouts ``a~`` and ``b~`` (default 1 on every unit).
        **others
            Any other setting (``model``, ``batch_size``, ...), in wickode's convention
            (``readout_decay`` included: it multiplies ``a`` as it stands).

        Examples
        --------
        >>> s = RunSettings.mean_field(4, 2, 0.5, eta_a=0.5)
        >>> s.eta, s.eta_a, s.a.tolist()
        (2.0, 0.125, [0.25, 0.25, 0.25, 0.25])
        """
        p = check_int(p, "p", minimum=1)
        k = check_int(k, "k", minimum=1)
        eta = check_scalar(eta, "eta", positive=True)
        eta_a = check_scalar(eta_a, "eta_a", nonnegative=True)
        a = _unit_readouts(student_readout, "student_readout", p, "p") / p
        b = _unit_readouts(teacher_readout, "teacher_readout", k, "k") / k
        return cls(eta=p * eta, eta_a=eta_a / p, a=a, b=b, **others)

    def replace(self, **changes: Any) -> RunSettings:
        """A copy with ``changes`` applied (validated); unknown names raise ``TypeError`` naming them."""
        self._refuse_unknown(changes, "RunSettings has no setting(s)")
        return dataclasses.replace(self, **changes)

    # ---- what the solvers ask ------------------------------------------------------------------

    @property
    def per_unit(self) -> bool:
        """Readout vectors or a trained readout: the per-tuple route of the dynamics."""
        return self.a is not None or self.b is not None or self.eta_a > 0

    # ---- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description: the model as its spec (text), readout vectors as nested lists.

        ``RunSettings.from_dict(s.to_dict()) == s`` (Python floats print and parse back exactly).
        """
        out: dict[str, Any] = {}
        for name in self.field_names():
            value = getattr(self, name)
            if name == "model":
                value = model_spec(value)
            elif isinstance(value, np.ndarray):
                value = value.tolist()
            out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSettings:
        """The settings a :meth:`to_dict` describes (entries a newer version added are refused by name)."""
        values = dict(data)
        if values.get("model") is not None:
            values["model"] = model_from_spec(values["model"])
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(map(repr, unknown))} in the stored settings")
        return cls(**values)

    # ---- value semantics -----------------------------------------------------------------------

    def _key(self) -> tuple:
        return tuple(
            _array_key(value) if isinstance(value, np.ndarray) else value
            for value in (getattr(self, name) for name in self.field_names())
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunSettings):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        # only what differs from the defaults; arrays by shape (and values when short)
        parts = [f"eta={self.eta!r}"]
        defaults = self.defaults()
        for name in self.field_names()[1:]:
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                shown = np.array2string(value, threshold=6, separator=", ") if value.size <= 6 else None
                parts.append(f"{name}={shown}" if shown else f"{name}=<array {value.shape}>")
            elif value is not defaults[name] and value != defaults[name]:
                shown = getattr(value, "name", None) if name == "model" else None
                parts.append(f"{name}={shown!r}" if shown else f"{name}={value!r}")
        return f"RunSettings({', '.join(parts)})"


#: The defaults (every setting but ``eta``), read once for the evaluation functions' fast path.
_DEFAULTS = RunSettings.defaults()

__all__ = ["RunSettings"]
