"""`ProbeConfig`: everything that defines a probe run (the `masktax probe` flags, one to one)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from masktax.errors import MasktaxError

FORMATS = ("auto", "base", "chat")
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda")


def parse_grid(text: str | None) -> tuple[str, ...] | None:
    """Split a `--grid` value ("0,1,2") into stripped pieces; empty pieces are an error."""
    if text is None:
        return None
    pieces = [p.strip() for p in str(text).split(",")]
    if not pieces or any(not p for p in pieces):
        raise MasktaxError(f"--grid '{text}' has an empty entry; give comma-separated values such as 0,1,2")
    return tuple(pieces)


def parse_list(text: str | None, flag: str) -> tuple[str, ...] | None:
    """Split a comma-separated flag value; None or "" means "all"."""
    if text is None or not str(text).strip():
        return None
    pieces = [p.strip() for p in str(text).split(",")]
    if any(not p for p in pieces):
        raise MasktaxError(f"{flag} '{text}' has an empty entry")
    return tuple(pieces)


def parse_batch_size(value: int | str) -> int | str:
    """"auto" or a positive integer."""
    if isinstance(value, int) or str(value).strip().lstrip("-").isdigit():
        n = int(value)
        if n < 1:
            raise MasktaxError(f"--batch-size must be 'auto' or a positive integer, got {value}")
        return n
    if str(value).strip().lower() == "auto":
        return "auto"
    raise MasktaxError(f"--batch-size must be 'auto' or a positive integer, got '{value}'")


def normalise_adapters(adapters: tuple[str | None, ...] | None, n_models: int) -> tuple[str | None, ...] | None:
    """"none" -> None, trailing Nones dropped (None when nothing is left); each dir must be a fine-tuning run."""
    if adapters is None:
        return None
    if isinstance(adapters, str):
        adapters = (adapters,)
    if len(adapters) > n_models:
        raise MasktaxError(f"{len(adapters)} --adapter values for {n_models} --model values; give at most one per model")
    out: list[str | None] = [None if a is None or str(a).strip().lower() in ("", "none") else str(a) for a in adapters]
    for path in out:
        if path is not None:
            from masktax.models.finetuned import finetune_dir

            finetune_dir(path)  # MasktaxError naming the path when it holds no adapter or fine-tuned model
    while out and out[-1] is None:
        out.pop()
    return tuple(out) or None


@dataclass(frozen=True)
class ProbeConfig:
    """A probe run. Every field is a `masktax probe` flag; `run_probe(cfg)` runs it.

    grid: the swept x values (None: the probe's default grid); checked by the probe.
    datasets: suite dataset names to run (None: all 16).
    n_items: test points per dataset (the first n of each; the paper uses 1000).
    format: prompt format; "auto" = chat for models whose card says instruct/chat, else base.
    adapters: fine-tuning run dirs (`masktax finetune`, or any dir with a peft adapter) paired with
    `models` in order and applied with `training.lora.apply_adapter`; None (or "none") = no adapter
    for that model, and models past the end get none. Stored without trailing Nones (so adding a
    model without an adapter resumes the run); the same model may appear with different adapters.
    """

    probe: str
    models: tuple[str, ...]
    out: str
    n_items: int = 1000
    grid: tuple[int | str, ...] | None = None
    datasets: tuple[str, ...] | None = None
    seed: int = 0
    batch_size: int | str = "auto"  # "auto": from the device's free memory (token budget on CPU)
    device: str = "auto"  # "auto": cuda if available, else cpu
    dtype: str = "auto"  # "auto": bfloat16 on cuda, float32 on cpu
    format: str = "auto"
    trust_remote_code: bool = False  # import a checkpoint's own modelling code
    mask_token_id: int | None = None  # for MDLMs whose tokenizer declares no mask token
    progress: bool = True  # tqdm bar over items (not part of the run's identity)
    adapters: tuple[str | None, ...] | None = None  # run dirs paired with models (see above)

    def __post_init__(self) -> None:
        from masktax.probes import PROBES

        if self.probe not in PROBES:
            raise MasktaxError(f"unknown probe '{self.probe}'; choose one of {', '.join(PROBES)}")
        if not self.models:
            raise MasktaxError("give at least one --model")
        object.__setattr__(self, "adapters", normalise_adapters(self.adapters, len(self.models)))
        pairs = list(zip(self.models, self.adapter_dirs(), strict=True))
        if len(set(pairs)) != len(pairs):
            raise MasktaxError("the same --model is given twice (with the same --adapter)")
        if self.n_items < 1:
            raise MasktaxError(f"--n-items must be at least 1, got {self.n_items}")
        if self.format not in FORMATS:
            raise MasktaxError(f"--format must be one of {', '.join(FORMATS)}, got '{self.format}'")
        if self.dtype not in DTYPES:
            raise MasktaxError(f"--dtype must be one of {', '.join(DTYPES)}, got '{self.dtype}'")
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            raise MasktaxError(f"--device must be one of {', '.join(DEVICES)} or cuda:N, got '{self.device}'")
        if self.mask_token_id is not None and self.mask_token_id < 0:
            raise MasktaxError(f"--mask-token-id must be non-negative, got {self.mask_token_id}")
        object.__setattr__(self, "batch_size", parse_batch_size(self.batch_size))
        object.__setattr__(self, "models", tuple(self.models))
        grid = PROBES[self.probe].check_grid(self.grid)
        object.__setattr__(self, "grid", grid)
        if self.datasets is not None:
            if not self.datasets:
                raise MasktaxError("--datasets is empty")
            object.__setattr__(self, "datasets", tuple(self.datasets))

    def adapter_dirs(self) -> tuple[str | None, ...]:
        """One entry per model: its adapter run dir, or None."""
        given = self.adapters or ()
        return tuple(given) + (None,) * (len(self.models) - len(given))

    def to_dict(self) -> dict:
        """JSON-ready config (lists, not tuples) as stored in config.json."""
        d = asdict(self)
        for k in ("models", "grid", "datasets", "adapters"):
            d[k] = list(d[k]) if d[k] is not None else None
        return d
