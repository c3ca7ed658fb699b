"""The sentence encoder on onnxruntime: an export made once per model, fp32 or int8, used like the torch one.

sentence-transformers' own ``backend="onnx"`` goes through ``optimum-onnx``, which pins
``transformers<4.58`` (this project runs transformers 5), so the export here is done with what is
installed: ``torch.onnx.export`` of the model's transformer (eager attention, so onnxruntime's
BERT optimizer can fuse it), onnxruntime's transformer optimizer, and ``quantize_dynamic`` for the
int8 copy (MatMul weights, unsigned 8 bits per output channel). Tokenising, pooling and
normalising stay sentence-transformers' own modules, so any model whose first module is a
``Transformer`` works; only the transformer's forward runs on onnxruntime.

The export lives in ``<home>/models/onnx/<model>/`` (``model.onnx``, ``model-int8.onnx``,
``export.json`` with their sizes and checksums). It is built in a staging folder beside it and
renamed into place, so a killed export leaves no half folder; a folder whose files disagree with
``export.json`` is an :class:`ArtefactError` naming it and the fix (delete it: it is exported again).

Example::

    from kgrag.encoders.onnx import OnnxEncoder
    encoder = OnnxEncoder.open("all-MiniLM-L6-v2", home=Path("~/.cache/kgrag").expanduser(), quantised=True)
    vectors = encoder.encode(["psoriasis", "HLA-B"], batch_size=16)   # unit rows, float32
"""

from __future__ import annotations

import inspect
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from kgrag.artefacts import block_checksums
from kgrag.errors import ArtefactError, BackendUnavailableError
from kgrag.encoders.model_files import embedding_dimension, load_sentence_transformer, resolve_model_path, slug

EXPORT_FORMAT = 1
META_FILE = "export.json"
FP32_FILE = "model.onnx"
INT8_FILE = "model-int8.onnx"
OUTPUT_NAME = "token_embeddings"
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
BACKEND_SETTING = "KGRAG_EMBEDDING_BACKEND"


class ExportedFile(BaseModel):
    """One exported model file and what it must be on disk."""

    name: str
    bytes: int
    sha256: list[str]


class OnnxExport(BaseModel):
    """``export.json``: what was exported, from where, how, and its files."""

    format: int = EXPORT_FORMAT
    model: str
    source: str
    inputs: list[str]
    optimized: bool
    quantization: dict[str, Any]
    files: list[ExportedFile]
    onnxruntime: str
    torch: str
    seconds: float
    exported_at: str


def export_dir(home: Path, model_name: str) -> Path:
    """Where the onnx export of ``model_name`` lives: ``<home>/models/onnx/<model slug>``."""
    return home / "models" / "onnx" / slug(model_name)


def _fix(directory: Path, model_name: str) -> str:
    return (f"delete the folder (rm -r {directory}) and run again: it is exported again from {model_name!r}; "
            f"or set {BACKEND_SETTING}=torch")


def check_export(directory: Path, model_name: str) -> OnnxExport:
    """The export in ``directory``, checked (manifest, model, file sizes and checksums); else an ArtefactError."""
    meta_path = directory / META_FILE
    try:
        meta = OnnxExport.model_validate_json(meta_path.read_text())
    except (OSError, UnicodeDecodeError, ValidationError, ValueError) as exc:
        raise ArtefactError(f"onnx export at {directory} is damaged or incomplete: {META_FILE} unreadable "
                            f"({type(exc).__name__}); {_fix(directory, model_name)}") from None
    if meta.model != model_name:
        raise ArtefactError(f"onnx export at {directory} is of model {meta.model!r}, not {model_name!r}; "
                            f"{_fix(directory, model_name)}")
    for item in meta.files:
        path = directory / item.name
        size = path.stat().st_size if path.is_file() else None
        if size != item.bytes:
            found = "missing" if size is None else f"{size} bytes, expected {item.bytes}"
            raise ArtefactError(f"onnx export at {directory} is damaged: {item.name} {found}; "
                                f"{_fix(directory, model_name)}")
        if block_checksums(path) != item.sha256:
            raise ArtefactError(f"onnx export at {directory} is damaged: {item.name} checksum mismatch; "
                                f"{_fix(directory, model_name)}")
    return meta


def ensure_export(model_name: str, home: Path) -> tuple[Path, OnnxExport]:
    """The checked export of ``model_name`` under ``home``, exported first when there is none."""
    directory = export_dir(home, model_name)
    if not directory.exists():
        _export(model_name, directory)
    return directory, check_export(directory, model_name)


def _transformer_module(model: Any, model_name: str) -> Any:
    """The model's first module when it is a text transformer whose forward gives token embeddings."""
    first = model[0]
    config = getattr(first, "modality_config", {}).get("text", {"method": "forward",
                                                                "method_output_name": "last_hidden_state"})
    if (type(first).__name__ != "Transformer" or config.get("method") != "forward"
            or config.get("method_output_name") != "last_hidden_state"
            or getattr(first, "module_output_name", OUTPUT_NAME) != OUTPUT_NAME):
        raise BackendUnavailableError(
            f"embedding model {model_name!r} cannot run on onnxruntime: its first module is "
            f"{type(first).__name__} ({config}), not a text Transformer giving token embeddings; "
            f"set {BACKEND_SETTING}=torch")
    return first


def _model_inputs(model: Any, transformer: Any) -> list[str]:
    """The tokeniser outputs the transformer's forward takes, in a fixed order."""
    features = model.preprocess(["a sentence", "another, longer sentence"])
    accepted = set(inspect.signature(transformer.auto_model.forward).parameters)
    return [name for name in MODEL_INPUTS if name in features and name in accepted]


def _export(model_name: str, directory: Path) -> None:
    """Export ``model_name`` into a staging folder beside ``directory``, then rename it into place."""
    try:
        import onnxruntime
        import torch
    except ImportError as exc:
        raise BackendUnavailableError(f"{BACKEND_SETTING}=onnx needs onnxruntime and onnx (pip install "
                                      f"'kgrag[onnx]'), or set {BACKEND_SETTING}=torch: {exc}") from exc
    started = time.perf_counter()
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.staging-", dir=directory.parent))
    try:
        model = load_sentence_transformer(model_name)
        transformer = _transformer_module(model, model_name)
        inputs = _model_inputs(model, transformer)
        try:
            _export_fp32(model, transformer, inputs, staging / "plain.onnx")
            optimized = _optimize(staging / "plain.onnx", staging / FP32_FILE, transformer.auto_model.config)
            quantization = _quantize(staging / FP32_FILE, staging / INT8_FILE)
        except (RuntimeError, ValueError, TypeError, ImportError) as exc:
            raise BackendUnavailableError(f"embedding model {model_name!r} could not be exported to onnx "
                                          f"({type(exc).__name__}: {str(exc)[:300]}); set "
                                          f"{BACKEND_SETTING}=torch") from exc
        (staging / "plain.onnx").unlink(missing_ok=True)
        files = [ExportedFile(name=name, bytes=(staging / name).stat().st_size,
                              sha256=block_checksums(staging / name)) for name in (FP32_FILE, INT8_FILE)]
        meta = OnnxExport(model=model_name, source=_source_path(model_name), inputs=inputs, optimized=optimized,
                          quantization=quantization, files=files,
                          onnxruntime=onnxruntime.__version__, torch=torch.__version__,
                          seconds=round(time.perf_counter() - started, 2),
                          exported_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        (staging / META_FILE).write_text(meta.model_dump_json(indent=2))
        staging.chmod(0o755)
        try:
            staging.rename(directory)
        except OSError:
            if not directory.exists():
                raise
            shutil.rmtree(staging, ignore_errors=True)  # another process exported it first: use theirs
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _source_path(model_name: str) -> str:
    return resolve_model_path(model_name)


class _TokenEmbeddings:
    """The transformer's forward as a module with positional inputs (what ``torch.onnx.export`` traces)."""

    @staticmethod
    def module(auto_model: Any, inputs: list[str]) -> Any:
        import torch

        class Forward(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = auto_model

            def forward(self, *args: Any) -> Any:
                return self.model(**dict(zip(inputs, args)), return_dict=True).last_hidden_state

        return Forward().eval()


def _export_fp32(model: Any, transformer: Any, inputs: list[str], path: Path) -> None:
    import torch

    auto_model = transformer.auto_model
    if hasattr(auto_model, "set_attn_implementation"):
        auto_model.set_attn_implementation("eager")  # the attention pattern onnxruntime's optimizer fuses
    else:
        auto_model.config._attn_implementation = "eager"
    features = model.preprocess(["a sentence to trace the model with", "a shorter one"])
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_TokenEmbeddings.module(auto_model, inputs), tuple(features[n] for n in inputs), str(path),
                          dynamo=False, input_names=inputs, output_names=[OUTPUT_NAME], opset_version=17,
                          dynamic_axes={**{n: axes for n in inputs}, OUTPUT_NAME: axes})


def _optimize(source: Path, target: Path, config: Any) -> bool:
    """onnxruntime's transformer optimizer (fused attention, layer norms, GELU) for BERT-like models.

    Another architecture (or a failed fusion) keeps the plain export: the vectors are the same,
    only slower. Returns whether the optimized graph was kept.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    heads, hidden = getattr(config, "num_attention_heads", 0), getattr(config, "hidden_size", 0)
    if getattr(config, "model_type", "") in ("bert", "roberta", "xlm-roberta", "mpnet", "distilbert", "electra"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                optimizer = optimize_model(str(source), model_type="bert", num_heads=heads, hidden_size=hidden,
                                           opt_level=1, use_gpu=False)
            optimizer.save_model_to_file(str(target))
            return True
        except Exception:  # noqa: BLE001 - the fusions are an optimisation; the plain graph is correct
            target.unlink(missing_ok=True)
    shutil.copyfile(source, target)
    return False


def _quantize(source: Path, target: Path) -> dict[str, Any]:
    """Dynamic int8 quantisation of the MatMul (and fused Attention) weights; returns its settings."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    settings: dict[str, Any] = {"method": "onnxruntime.quantization.quantize_dynamic", "weight_type": "QUInt8",
                                "per_channel": True, "op_types": ["MatMul", "Attention"]}
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QUInt8, per_channel=True,
                     op_types_to_quantize=settings["op_types"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return settings


class OnnxEncoder:
    """sentence-transformers' tokeniser and pooling around the transformer on onnxruntime."""

    def __init__(self, model: Any, session: Any, inputs: list[str], export: OnnxExport, file: Path) -> None:
        self._model = model
        self._session = session
        self._inputs = inputs
        self.export = export
        self.file = file

    @classmethod
    def open(cls, model_name: str, *, home: Path, quantised: bool, threads: int = 0) -> "OnnxEncoder":
        """Export ``model_name`` once under ``home`` (or reuse the export) and open a session on ``threads``."""
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError(f"{BACKEND_SETTING}=onnx needs onnxruntime (pip install 'kgrag[onnx]'), "
                                          f"or set {BACKEND_SETTING}=torch") from exc
        directory, export = ensure_export(model_name, home)
        model = load_sentence_transformer(model_name)
        _transformer_module(model, model_name)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: onnxruntime's default, one per core
        options.inter_op_num_threads = 1
        file = directory / (INT8_FILE if quantised else FP32_FILE)
        try:
            session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise ArtefactError(f"onnx export at {directory}: {file.name} does not load ({str(exc)[:200]}); "
                                f"{_fix(directory, model_name)}") from None
        return cls(model, session, export.inputs, export, file)

    def encode(self, texts: Sequence[str], *, batch_size: int, progress: bool = False) -> np.ndarray:
        """Unit-length float32 rows, one per text; batches of similar length, like sentence-transformers."""
        import torch
        from tqdm import tqdm

        order = np.argsort([-len(text) for text in texts], kind="stable")
        rows: list[np.ndarray] = [np.empty(0)] * len(texts)
        with torch.inference_mode():
            for start in tqdm(range(0, len(texts), batch_size), desc="Batches", disable=not progress):
                batch = [int(i) for i in order[start:start + batch_size]]
                features = self._model.preprocess([texts[i] for i in batch])
                feed = {name: features[name].numpy() for name in self._inputs}
                [tokens] = self._session.run([OUTPUT_NAME], feed)
                features[OUTPUT_NAME] = torch.from_numpy(tokens)
                for module in list(self._model)[1:]:
                    features = module(features)
                vectors = torch.nn.functional.normalize(features["sentence_embedding"], p=2, dim=1).numpy()
                for row, index in enumerate(batch):
                    rows[index] = vectors[row]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack(rows).astype(np.float32)

    @property
    def dimension(self) -> int:
        return embedding_dimension(self._model)
