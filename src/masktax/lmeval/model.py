"""`--model masktax`: every model masktax loads, as an lm-eval (0.4.x) language model.

    python -m masktax.lmeval run --model masktax --model_args model=embedded-mdlm,mc_num=32 --tasks T
    masktax eval --model embedded-mdlm --tasks T --extra-masks 0,10,50,200 --out runs/eval

- loglikelihood: exact for causal LMs; for MDLMs LLaDA's Monte Carlo mask bound (`scoring.py`), all
  requests' rows batched together; `extra_masks` appends masks after the continuation [P1].
- loglikelihood_rolling: lm-eval's disjoint rolling windows of the model's context, each scored as a
  loglikelihood request (exact for AR, the mask bound for MDLMs), summed per document.
- generate_until: masktax's samplers (`generation.py`), batched, stop sequences honoured.
- Several processes (`accelerate launch -m masktax.lmeval run ...`): rank, world size, device and the
  evaluator's `all_gather` / `gather_object` / `barrier` go through accelerate; every request is
  scored the same way wherever it lands (per-request seeds), so the numbers equal one process's.
- Uniform-noise models (DiffusionGemma) have no mask token: each method says so in one line.

Importing this module registers the name `masktax` with lm-eval (and the package's entry point
`lm_eval.models: masktax` lets lm-eval releases that read entry points find it without an import).
"""

from __future__ import annotations

import logging
import os

import torch
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from masktax.errors import MasktaxError
from masktax.lmeval.args import ModelArgs
from masktax.lmeval.generation import generate_texts
from masktax.lmeval.scoring import ar_loglikelihood, mdlm_loglikelihood
from masktax.models import auto_batch_size, load
from masktax.models.loaded import LoadedModel

CPU_TOKEN_BUDGET = 16_384  # padded tokens per forward on CPU for batch_size=auto
CPU_LOGITS_BYTES = 2**30  # and at most 1 GiB of float32 logits
LM_EVAL_DEFAULT_DEVICE = "cuda:0"  # what `lm_eval run` passes when --device is not given
log = logging.getLogger(__name__)


@register_model("masktax")
class MasktaxLM(TemplateLM):
    """lm-eval's view of a `masktax.models.LoadedModel` (see the module docstring)."""

    def __init__(self, lm: LoadedModel | None = None, **model_args) -> None:
        super().__init__()
        self.args = ModelArgs.from_kwargs(model_args if lm is None else {"model": lm.name, **model_args})
        self.accelerator = None
        world = int(os.environ.get("WORLD_SIZE", "1"))
        device = self.args.device
        if device == LM_EVAL_DEFAULT_DEVICE and not torch.cuda.is_available():
            log.warning("lm-eval's default device %s is not available here; using the CPU", device)
            device = "auto"
        if world > 1:
            from accelerate import Accelerator

            # On CPU accelerate sets up the gloo process group only when told it is a CPU run.
            self.accelerator = Accelerator(cpu=device == "cpu" or not torch.cuda.is_available())
            dev = self.accelerator.device
            device = "cpu" if dev.type == "cpu" else str(dev)  # "cpu:0" is not a device safetensors reads to
        self.lm = lm if lm is not None else load(
            self.args.model, device=device, dtype=self.args.dtype, trust_remote_code=self.args.trust_remote_code,
            mask_token_id=self.args.mask_token_id)
        if self.lm.tokenizer is None:
            raise MasktaxError(f"model '{self.lm.name}' ships no tokenizer; lm-eval needs one to encode text")
        self.tokenizer = self.lm.tokenizer
        self._rank = self.accelerator.process_index if self.accelerator else 0
        self._world_size = self.accelerator.num_processes if self.accelerator else 1
        self._device = self.lm.device
        self.backend = "causal"  # lm-eval's pair encoding: encode context + continuation whole, then split

    # ---- what the evaluator asks of every LM ------------------------------------------------------
    @property
    def eot_token_id(self) -> int:
        return self.lm.eos_id if self.lm.eos_id is not None else self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        bos = getattr(self.tokenizer, "bos_token_id", None)
        return bos if bos is not None else self.eot_token_id

    @property
    def max_length(self) -> int:
        return self.lm.max_length

    @property
    def extra_masks(self) -> int:
        return self.args.extra_masks

    def set_extra_masks(self, n: int) -> None:
        """Change the mask knob of a loaded model (the sweep reuses one model for every N)."""
        self.args = self.args.replace(extra_masks=n)

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        kw = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        return list(self.tokenizer.encode(string, **kw))

    def tok_decode(self, tokens, skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=skip_special_tokens)

    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.tokenizer, "name_or_path", "") or self.lm.name).replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        if isinstance(chat_template, str):
            return chat_template
        return getattr(self.tokenizer, "chat_template", None)

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise MasktaxError(f"--apply_chat_template needs a chat template; the tokenizer of '{self.lm.name}' has none")
        return self.tokenizer.apply_chat_template(
            chat_history, tokenize=False, add_generation_prompt=add_generation_prompt,
            continue_final_message=not add_generation_prompt)

    def get_model_info(self) -> dict:
        return {"masktax_model": self.lm.name, "kind": self.lm.kind, "mc_num": self.args.mc_num,
                "extra_masks": self.args.extra_masks, "seed": self.args.seed}

    # ---- several processes (lm-eval calls these when world_size > 1) -----------------------------
    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.accelerator.gather(tensor) if self.accelerator is not None else tensor

    def gather_object(self, obj, dst: int = 0):
        if self.accelerator is None:
            return [obj]
        result = [None] * self._world_size if self._rank == dst else None
        torch.distributed.gather_object(obj, result, dst=dst)
        return result

    def barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()

    # ---- scoring -----------------------------------------------------------------------------------
    def _batching(self, longest: int) -> tuple[int | None, int | None]:
        """(rows, padded tokens) per forward: an integer batch_size is rows; "auto" is a token budget."""
        if not isinstance(self.args.batch_size, str):
            return int(self.args.batch_size), None
        vocab = self.lm.embedding_weight().shape[0]
        if self.lm.device.type == "cpu":
            tokens = max(longest, min(CPU_TOKEN_BUDGET, CPU_LOGITS_BYTES // (4 * vocab)))
        else:
            tokens = max(1, auto_batch_size(self.lm, longest)) * longest
        rows = self.args.max_batch_size
        return rows, tokens

    def _require_scores(self, what: str) -> None:
        if self.lm.kind == "uniform":
            raise MasktaxError(f"{what} is not defined for '{self.lm.name}': a uniform-noise diffusion model has no "
                               "mask token, so neither the exact nor the mask bound applies")
        if self.lm.kind == "ar" and self.args.cfg:
            raise MasktaxError(f"cfg={self.args.cfg} guides an MDLM's mask bound; '{self.lm.name}' is causal (AR), "
                               "whose log-likelihood is exact: use cfg=0")
        if self.lm.kind == "ar" and self.args.extra_masks:
            raise MasktaxError(f"extra_masks={self.args.extra_masks} needs a masked diffusion model; '{self.lm.name}' is "
                               "causal (AR), which cannot see tokens after the continuation: use extra_masks=0")

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        self._require_scores("loglikelihood")
        pairs = [(ctx, cont) for _, ctx, cont in requests]
        if any(not cont for _, cont in pairs):
            raise MasktaxError("a loglikelihood request has an empty continuation; nothing to score")
        longest = max((len(c) + len(a) + self.args.extra_masks for c, a in pairs), default=1)
        rows, tokens = self._batching(longest)
        if self.lm.kind == "ar":
            out = ar_loglikelihood(self.lm, pairs, batch_size=rows, max_tokens=tokens)
        else:
            mask_id = self.lm.require_mask("loglikelihood with an MDLM")
            if longest > self.lm.max_length:
                raise MasktaxError(f"a request of {longest} tokens (with {self.args.extra_masks} extra masks) exceeds the "
                                   f"{self.lm.max_length}-token context of '{self.lm.name}'")
            out = mdlm_loglikelihood(self.lm, pairs, mask_id=mask_id, mc_num=self.args.mc_num,
                                     extra_masks=self.args.extra_masks, seed=self.args.seed, batch_size=rows,
                                     max_tokens=tokens, greedy=self.args.greedy, cfg=self.args.cfg)
        for (key, _, _), result in zip(requests, out, strict=True):
            if key is not None:
                self.cache_hook.add_partial("loglikelihood", key, result)
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        self._require_scores("loglikelihood_rolling")
        windows, owner = [], []
        span = self.max_length - self.args.extra_masks
        if span < 2:
            raise MasktaxError(f"extra_masks={self.args.extra_masks} leaves no room in the {self.max_length}-token context")
        for r, (text,) in enumerate(req.args for req in requests):
            for ctx, cont in map(make_disjoint_window, get_rolling_token_windows(
                    token_list=self.tok_encode(text), prefix_token=self.prefix_token_id, max_seq_len=span, context_len=1)):
                windows.append((None, ctx, cont))
                owner.append(r)
        scores = self._loglikelihood_tokens(windows)
        totals = [0.0] * len(requests)
        for r, (ll, _) in zip(owner, scores, strict=True):
            totals[r] += ll
        for req, total in zip(requests, totals, strict=True):
            self.cache_hook.add_partial("loglikelihood_rolling", req.args, total)
        return totals

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        if self.lm.kind == "uniform":
            raise MasktaxError(f"generate_until through masktax's samplers needs a mask token; '{self.lm.name}' is a "
                               "uniform-noise diffusion model: generate with transformers' own pipeline")
        if self.lm.kind == "ar" and self.args.extra_masks:
            self._require_scores("generate_until")
        texts = generate_texts(self.lm, [req.args for req in requests], self.args)
        for req, text in zip(requests, texts, strict=True):
            self.cache_hook.add_partial("generate_until", req.args, text)
        return texts
