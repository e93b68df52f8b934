"""``TranslationEngine``: batched translation on one loaded checkpoint (synchronous).

Sentences of any number of requests and language pairs run in one packed batch: sources
are concatenated without padding, the M2M100 / NLLB target language is a per-sentence
forced first token, and a sentence leaves the batch when its result is final. The
engine is not thread-safe; ``AsyncTranslator`` confines it to one worker thread.

Input rules (documented behaviour, not errors):
* empty or whitespace-only texts translate to ``""`` without running the model;
* same source and target language returns the texts unchanged;
* a text longer than the model's source limit (``max_source_tokens``: the tokenizer's
  ``model_max_length`` capped at ``max_position_embeddings``, 512 tokens for OPUS-MT) is
  truncated to its first tokens, so only that prefix is translated; split long texts into
  sentences first (the core's pipeline does);
* without ``max_new_tokens`` a sentence may generate ``min(checkpoint max_length - 1,
  2 * source tokens + 16)`` tokens, which bounds runaway repetition on short inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from engine.cpu_threads import available_threads
from engine.devices import bind_thread_to
from engine.layers import use_column_major_weights
from engine.request_errors import InvalidRequestError
from engine.translation.cpu_decode import CpuSeq2SeqDecoder
from engine.translation.errors import UnsupportedLanguagePairError
from engine.translation.graphs import GraphLimits, StaticDecoding
from engine.translation.languages import LanguageScheme, PairPlan
from engine.translation.loader import LoadedTranslationModel, load_translation_model
from engine.translation.requests import TranslationRequest, check_options, check_texts
from engine.translation.search import SearchConfig, beam_search, greedy_search
from engine.translation.state import DecoderState
from engine.translation.tokenization import TextCodec, build_scheme

__all__ = ["TranslationEngine", "TranslationRequest"]

log = logging.getLogger(__name__)


class _BoundDecoder:
    """``search.Decoder`` over the model (or its CPU decoder) and one batch's state;
    ``between`` (if any) runs before each step."""

    def __init__(
        self,
        step: Callable[[torch.Tensor, DecoderState], torch.Tensor],
        state: DecoderState,
        between: Callable[[], None] | None = None,
    ) -> None:
        self._step, self.state, self._between = step, state, between

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        if self._between is not None:
            self._between()
        return self._step(tokens, self.state)

    def reorder(self, rows: torch.Tensor) -> None:
        self.state.reorder_rows(rows)

    def keep(self, sentences: torch.Tensor) -> None:
        self.state.keep_sentences(sentences)


class TranslationEngine:
    """Translate batches of texts with a Marian or M2M100 / NLLB-200 checkpoint.

    Args:
        loaded: the loaded checkpoint.
        name: how the model is named in messages (its path or hub id).
        pair: Marian checkpoints without language metadata: (source, target) codes.
        max_batch_sentences: sentences decoded together (more are run in several batches).
        max_batch_tokens: source tokens encoded together.
        cpu_decode: on the CPU, decode through ``CpuSeq2SeqDecoder`` (its weights are
            re-laid column-major in place; False: the model's own ``decode_step``).
        cuda_graphs: on CUDA, decode batches up to these sizes by replaying CUDA graphs
            (``engine.translation.graphs``; the buffers are allocated up front); None:
            always eagerly.

    Attributes:
        between_steps: called before each eager decode step (None: nothing). On the CPU,
            ``AsyncTranslator`` lets the chat engine step there, as both share one thread
            (``engine.cpu_worker``).
    """

    between_steps: Callable[[], None] | None = None

    def __init__(
        self,
        loaded: LoadedTranslationModel,
        *,
        name: str,
        pair: tuple[str, str] | None = None,
        max_batch_sentences: int = 64,
        max_batch_tokens: int = 16384,
        cpu_decode: bool = True,
        cuda_graphs: GraphLimits | None = GraphLimits(),  # noqa: B008 (frozen)
    ) -> None:
        if max_batch_sentences < 1 or max_batch_tokens < 1:
            raise ValueError("max_batch_sentences and max_batch_tokens must be >= 1")
        self.loaded = loaded
        self.name = name
        c, gen = loaded.config, loaded.generation
        self.scheme: LanguageScheme = build_scheme(
            loaded.architecture.family, loaded.tokenizer, name, c.eos_token_id, pair
        )
        tok_max = getattr(loaded.tokenizer, "model_max_length", None)
        limit = tok_max if isinstance(tok_max, int) and 0 < tok_max < 1_000_000 else c.max_position
        self.max_source_tokens = min(limit, c.max_position)
        strip = {c.decoder_start_token_id, c.pad_token_id, *gen.eos_token_ids}
        strip |= set(getattr(self.scheme, "codes", {}).values())
        strip |= set(getattr(self.scheme, "target_tokens", {}).values())
        self.codec = TextCodec(loaded.tokenizer, self.max_source_tokens, strip)
        # Decoder positions 0 .. max_position-1 hold the start token and the output.
        self.max_new_tokens_limit = min((gen.max_length or c.max_position) - 1, c.max_position - 1)
        self.max_batch_sentences = max_batch_sentences
        self.max_batch_tokens = max_batch_tokens
        self.device = next(loaded.model.parameters()).device
        bind_thread_to(self.device)  # graph capture below launches Triton kernels
        self.cpu_decoder: CpuSeq2SeqDecoder | None = None
        if cpu_decode and self.device.type == "cpu":
            use_column_major_weights(loaded.model)  # before the decoder takes its views
            self.cpu_decoder = CpuSeq2SeqDecoder(loaded.model, max_parts=available_threads())
        self._decode_step = (
            loaded.model.decode_step if self.cpu_decoder is None else self.cpu_decoder.step
        )
        self.static: StaticDecoding | None = None
        if cuda_graphs is not None and self.device.type == "cuda":
            try:
                self.use_static_decoding(cuda_graphs, capture=True)
            except torch.OutOfMemoryError as exc:  # e.g. a chat model's KV cache took it
                log.warning("%s: no memory for CUDA-graph buffers, decoding eagerly: %s",
                            name, exc)  # fmt: skip
        if gen.ignored:
            log.warning(
                "%s: generation settings not applied by the engine: %s",
                name,
                ", ".join(gen.ignored),
            )

    @classmethod
    def load(
        cls,
        source: str | Path,
        *,
        dtype: str = "auto",
        device: str = "auto",
        pair: tuple[str, str] | None = None,
        max_batch_sentences: int = 64,
        max_batch_tokens: int = 16384,
        cpu_decode: bool = True,
        cuda_graphs: GraphLimits | None = GraphLimits(),  # noqa: B008 (frozen)
    ) -> TranslationEngine:
        """Load a checkpoint (see ``load_translation_model``) and wrap it.

        Raises:
            ModelLoadError: the model cannot be loaded or its languages determined.
        """
        loaded = load_translation_model(source, dtype=dtype, device=device)
        return cls(
            loaded,
            name=str(source),
            pair=pair,
            max_batch_sentences=max_batch_sentences,
            max_batch_tokens=max_batch_tokens,
            cpu_decode=cpu_decode,
            cuda_graphs=cuda_graphs,
        )

    def use_static_decoding(self, limits: GraphLimits | None, *, capture: bool) -> None:
        """Decode batches that fit ``limits`` on static buffers (None: never), replaying
        CUDA graphs when ``capture``; without it the same steps run eagerly, which is how
        the tests check them on the CPU."""
        self.static = None  # the old buffers go before the new ones are allocated
        if limits is None:
            return
        self.static = StaticDecoding(self.loaded.model, limits, capture=capture)
        log.info(
            "%s: static decoding for up to %d rows x %d steps x %d source tokens (%.0f MB%s)",
            self.name, limits.rows, limits.steps, limits.source_tokens,
            self.static.nbytes / 2**20, ", CUDA graphs" if capture else "",
        )  # fmt: skip

    # ------------------------------------------------------------------ languages
    def supports(self, src_lang: str, tgt_lang: str) -> bool:
        """Whether ``src_lang -> tgt_lang`` can be translated (same language: identity)."""
        return isinstance(self.scheme.plan(src_lang, tgt_lang), PairPlan)

    def plan(self, src_lang: str, tgt_lang: str) -> PairPlan:
        """How the pair runs on this model.

        Raises:
            UnsupportedLanguagePairError: the model cannot translate the pair (named).
        """
        result = self.scheme.plan(src_lang, tgt_lang)
        if isinstance(result, str):
            raise UnsupportedLanguagePairError(src_lang, tgt_lang, self.name, result)
        return result

    # ---------------------------------------------------------------- translating
    def translate(
        self,
        texts: Sequence[str],
        src_lang: str,
        tgt_lang: str,
        *,
        beam_size: int = 1,
        max_new_tokens: int | None = None,
    ) -> list[str]:
        """Translate ``texts`` (one batch however many) from ``src_lang`` to ``tgt_lang``.

        Raises:
            UnsupportedLanguagePairError: the pair is not supported.
            InvalidRequestError: a text is not a string, or bad beam / length values.
        """
        return self.translate_requests(
            [TranslationRequest(t, src_lang, tgt_lang) for t in check_texts(texts)],
            beam_size=beam_size,
            max_new_tokens=max_new_tokens,
        )

    def translate_requests(
        self,
        requests: Sequence[TranslationRequest],
        *,
        beam_size: int = 1,
        max_new_tokens: int | None = None,
    ) -> list[str]:
        """Translate texts of mixed language pairs together; results in request order.

        Raises:
            UnsupportedLanguagePairError: a request's pair is not supported.
            InvalidRequestError: bad texts, beam size or length.
        """
        check_options(beam_size, max_new_tokens)
        out = [""] * len(requests)
        groups: dict[tuple[str, str], list[int]] = {}
        for i, req in enumerate(requests):
            if not isinstance(req.text, str):
                raise InvalidRequestError(f"text {i} is {type(req.text).__name__}, not str")
            groups.setdefault((req.source, req.target), []).append(i)
        sources: list[list[int]] = []
        forced: list[int] = []
        where: list[int] = []
        for pair, members in groups.items():
            plan = self.plan(*pair)  # raises for an unsupported pair before any work
            if plan.identity:
                for i in members:
                    out[i] = requests[i].text
                continue
            todo = [i for i in members if requests[i].text.strip()]
            sources += self.codec.encode([requests[i].text for i in todo], plan) if todo else []
            forced += [-1 if plan.forced_bos_id is None else plan.forced_bos_id] * len(todo)
            where += todo
        ids = self.generate_ids(
            sources, forced_bos=forced, beam_size=beam_size, max_new_tokens=max_new_tokens
        )
        for i, text in zip(where, self.codec.decode(ids), strict=True):
            out[i] = text
        return out

    def generate_ids(
        self,
        sources: Sequence[Sequence[int]],
        *,
        forced_bos: Sequence[int] | None = None,
        beam_size: int = 1,
        max_new_tokens: int | None = None,
    ) -> list[list[int]]:
        """Token-level translation: source ids (special tokens included) -> output ids.

        Args:
            sources: each source's ids, at most ``max_source_tokens`` long.
            forced_bos: per source, a token forced first (-1: none).
            beam_size: 1 for greedy search.
            max_new_tokens: limit for all sources (None: the per-sentence default).

        Returns:
            The generated ids of each source (without the decoder start token, with the
            EOS when one was generated).

        Raises:
            InvalidRequestError: empty, too long or out-of-vocabulary sources, or bad options.
        """
        check_options(beam_size, max_new_tokens)
        c = self.loaded.config
        forced = list(forced_bos) if forced_bos is not None else [-1] * len(sources)
        if len(forced) != len(sources) or any(not -1 <= f < c.decoder_vocab_size for f in forced):
            raise InvalidRequestError("forced_bos needs one token id (or -1) per source")
        for i, src in enumerate(sources):
            if not 0 < len(src) <= self.max_source_tokens:
                raise InvalidRequestError(
                    f"source {i} has {len(src)} tokens; 1..{self.max_source_tokens} allowed"
                )
            if min(src) < 0 or max(src) >= c.vocab_size:
                raise InvalidRequestError(f"source {i} has token ids outside the vocabulary")
        limits = [self._limit(len(s), max_new_tokens) for s in sources]
        order = sorted(range(len(sources)), key=lambda i: -len(sources[i]))
        results: list[list[int]] = [[] for _ in sources]
        with torch.inference_mode():
            for chunk in self._chunks(order, sources):
                outs = self._run(
                    [sources[i] for i in chunk],
                    [forced[i] for i in chunk],
                    [limits[i] for i in chunk],
                    beam_size,
                )
                for i, ids in zip(chunk, outs, strict=True):
                    results[i] = ids
        return results

    def _limit(self, source_len: int, max_new_tokens: int | None) -> int:
        if max_new_tokens is not None:
            return min(max_new_tokens, self.max_new_tokens_limit)
        return min(self.max_new_tokens_limit, 2 * source_len + 16)

    def _chunks(self, order: list[int], sources: Sequence[Sequence[int]]) -> list[list[int]]:
        chunks: list[list[int]] = []
        tokens = 0
        for i in order:
            n = len(sources[i])
            if (
                not chunks
                or len(chunks[-1]) >= self.max_batch_sentences
                or (tokens + n > self.max_batch_tokens)
            ):
                chunks.append([])
                tokens = 0
            chunks[-1].append(i)
            tokens += n
        return chunks

    def _run(
        self, sources: list[Sequence[int]], forced: list[int], limits: list[int], beams: int
    ) -> list[list[int]]:
        dev, model, gen = self.device, self.loaded.model, self.loaded.generation
        lens = [len(s) for s in sources]
        ids = torch.tensor([t for s in sources for t in s], dtype=torch.int64).to(dev)
        lens_t = torch.tensor(lens, dtype=torch.int64)
        cu = torch.cat([torch.zeros(1, dtype=torch.int64), lens_t.cumsum(0)]).to(torch.int32)
        encoded = model.encode(ids, cu.to(dev))
        decoder: _BoundDecoder | StaticDecoding
        static = self.static
        if static is not None and static.fits(len(sources), beams, sum(lens), max(limits)):
            static.begin(model.cross_kv(encoded), lens, beams)
            decoder = static
        else:
            capacity = min(max(limits) + 1, 64)
            state = model.new_state(encoded, lens_t.to(dev), beams, capacity=capacity)
            decoder = _BoundDecoder(self._decode_step, state, self.between_steps)
        cfg = SearchConfig(
            beam_size=beams,
            decoder_start_id=self.loaded.config.decoder_start_token_id,
            pad_id=self.loaded.config.pad_token_id,
            eos_ids=gen.eos_token_ids,
            bad_ids=gen.bad_token_ids,
            forced_eos_id=gen.forced_eos_token_id,
            length_penalty=gen.length_penalty,
            early_stopping=gen.early_stopping,
        )
        search = greedy_search if beams == 1 else beam_search
        return search(decoder, limits, forced, cfg, dev)
