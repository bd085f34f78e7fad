"""Files from strangers: every size bounded before memory or disk is spent, and no code run without trust.

- Zips (uploads, ``.keras``, ``.npz``, SavedModel zips): member count, declared sizes, expansion ratio
  and paths are checked from the central directory before anything is read.
- Arrays: a ``.npy`` header's declared shape is checked against the file's size and a cap before the
  data is read; object arrays are refused (pickle).
- HDF5 weights (``.h5``, inside ``.keras``): each dataset's declared size against what the file stores.
- SavedModels: every op of every function must be on an allow-list of computation ops; file, process,
  Python-callback and network ops need ``--trust-model``.
Bounds are settings (``config.py``) so a host can change them.

Imports inside functions are deliberately lazy: h5py and TensorFlow's protobufs load only for the files that need
them.
"""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from whyzero.config import settings
from whyzero.errors import UnsafeModelError, WhyzeroError, first_line

MB = 2**20
# An array whose data would take more than this many times the bytes the file holds is a bomb
# (npz members are checked through the zip ratio instead).
HEADER_SLACK_BYTES = 1 << 16


def _mb(n: float) -> str:
    return f"{n / MB:,.0f} MB" if n >= MB else f"{n:,.0f} bytes"


def check_file_size(path: Path) -> None:
    """Refuses a file (or folder) larger than ``max_file_mb``."""
    limit = settings().max_file_bytes
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    if size > limit:
        raise WhyzeroError(f"The file is {_mb(size)}, above the limit of {_mb(limit)} (WHYZERO_MAX_FILE_MB). "
                           f"Received: {path.name}")


def check_zip(archive: zipfile.ZipFile, name: str) -> None:
    """Refuses a zip whose central directory declares too many, too large or too compressed members,
    or a path outside the extraction folder."""
    config = settings()
    members = archive.infolist()
    if len(members) > config.max_zip_members:
        raise WhyzeroError(f"The zip holds {len(members)} files, above the limit of {config.max_zip_members} "
                           f"(WHYZERO_MAX_ZIP_MEMBERS). Received: {name}")
    total = 0
    for info in members:
        if info.filename.startswith("/") or ".." in Path(info.filename).parts:
            raise WhyzeroError(f"The zip holds an unsafe path. Received: {info.filename}")
        total += info.file_size
        if info.file_size > config.max_zip_bytes or total > config.max_zip_bytes:
            raise WhyzeroError(f"The zip would extract to more than {_mb(config.max_zip_bytes)} "
                               f"(WHYZERO_MAX_ZIP_MB). Received: {name}")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > MB and ratio > config.max_zip_ratio:
            raise WhyzeroError(f"A zip member expands {ratio:,.0f}× (a zip bomb?), above the limit of "
                               f"{config.max_zip_ratio:g}× (WHYZERO_MAX_ZIP_RATIO). Received: {name}: {info.filename}")


def open_zip(path: Path) -> zipfile.ZipFile:
    """A checked zip archive."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise WhyzeroError(f"Expected a zip file. Received: {path.name}") from None
    check_zip(archive, path.name)
    return archive


def read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes, never more than its declared (checked) size."""
    info = archive.getinfo(name)
    with archive.open(info) as handle:
        data = handle.read(info.file_size + 1)
    if len(data) > info.file_size:
        raise WhyzeroError(f"A zip member is larger than it declares. Received: {name}")
    return data


def safe_extract(archive: zipfile.ZipFile, target: Path) -> None:
    """Extracts a checked archive; links and special files are not created."""
    for info in archive.infolist():
        destination = target / info.filename
        if info.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(read_member(archive, info.filename))


def remove_tree(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


# -- arrays ---------------------------------------------------------------------------------------------
def check_npy_header(handle: IO[bytes], available: int, name: str) -> None:
    """Reads a ``.npy`` header and refuses object arrays and declared sizes beyond the data or the cap.

    Args:
        handle: positioned at the start of the ``.npy`` data.
        available: the bytes the file (or zip member) really holds.
        name: for the message.
    """
    try:
        version = np.lib.format.read_magic(handle)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = reader(handle)
    except Exception as err:  # noqa: BLE001 - a corrupt header
        raise WhyzeroError(f"Could not read the array header ({first_line(err, 120)}). "
                           f"Received: {name}") from None
    if dtype.hasobject:
        raise WhyzeroError(f"Expected a numeric array; this one holds Python objects (pickle), which are not "
                           f"loaded. Received: {name}")
    declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    limit = settings().max_array_bytes
    if declared > limit:
        raise WhyzeroError(f"The array declares shape {tuple(shape)} ({_mb(declared)}), above the limit of "
                           f"{_mb(limit)} (WHYZERO_MAX_ARRAY_MB). Received: {name}")
    if declared > available + HEADER_SLACK_BYTES and declared > available:
        raise WhyzeroError(f"The array header declares {_mb(declared)} but the file holds {_mb(available)}: "
                           f"corrupt or truncated. Received: {name}")


def check_npy_file(path: Path) -> None:
    with open(path, "rb") as handle:
        check_npy_header(handle, path.stat().st_size, path.name)


def check_npz_file(path: Path) -> None:
    archive = open_zip(path)
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            continue
        with archive.open(info) as handle:
            check_npy_header(handle, info.file_size, f"{path.name}: {info.filename}")


# -- HDF5 weights -------------------------------------------------------------------------------------
def check_h5(source, name: str) -> None:
    """Every dataset's declared size must be stored in the file (or be small) and under the cap."""
    import h5py

    limit = settings().max_array_bytes
    problems: list[str] = []

    def visit(path: str, obj) -> None:
        if not isinstance(obj, h5py.Dataset):
            return
        declared = int(np.prod(obj.shape, dtype=np.float64)) * obj.dtype.itemsize if obj.shape else obj.dtype.itemsize
        stored = obj.id.get_storage_size()
        if declared > limit or (declared > MB and declared > 100 * max(stored, 1)):
            problems.append(f"{path} declares {_mb(declared)}, stores {_mb(stored)}")

    try:
        with h5py.File(source, "r") as handle:
            handle.visititems(visit)
    except OSError as err:
        raise WhyzeroError(f"Could not read the HDF5 weights ({first_line(err, 120)}). "
                           f"Received: {name}") from None
    if problems:
        raise WhyzeroError(f"The weights declare more data than the file holds ({problems[0]}). Received: {name}")


# -- Keras files ----------------------------------------------------------------------------------------
UNSAFE_LAYERS = {"Lambda": "a Lambda layer (its Python code runs when the file loads)",
                 "TFSMLayer": "a TFSMLayer (it loads and runs an external SavedModel)"}


def check_keras_file(path: Path, trust_model: bool) -> None:
    """A ``.keras`` archive: bounded, its weights' datasets honest, and no code-carrying layer without trust."""
    archive = open_zip(path)
    names = archive.namelist()
    if "config.json" not in names:
        raise WhyzeroError(f"Expected a .keras archive (with config.json); the file is not one. Received: {path.name}")
    if not trust_model:
        refuse_unsafe_layers(read_member(archive, "config.json").decode("utf-8", "replace"), path.name)
    for member in names:
        if member.endswith(".h5"):

            check_h5(io.BytesIO(read_member(archive, member)), f"{path.name}: {member}")


def refuse_unsafe_layers(config_text: str, name: str) -> None:
    for class_name, what in UNSAFE_LAYERS.items():
        if re.search(rf'"class_name":\s*"{class_name}"', config_text):
            layer = re.search(rf'"class_name":\s*"{class_name}".*?"name":\s*"([^"]{{1,80}})"', config_text, re.S)
            label = f" '{layer.group(1)}'" if layer else ""
            raise UnsafeModelError(f"The model holds {what}{label}. Pass trust_model=True (CLI: --trust-model) if "
                                   f"you trust its source. Received: {name}")


def check_h5_model(path: Path, trust_model: bool) -> None:
    check_h5(str(path), path.name)
    if trust_model:
        return
    import h5py

    with h5py.File(str(path), "r") as handle:
        config = handle.attrs.get("model_config")
    if config is not None:
        refuse_unsafe_layers(config.decode() if isinstance(config, bytes) else str(config), path.name)


# -- SavedModels ------------------------------------------------------------------------------------------
# Computation only: what Keras and tf_keras models export (dense, conv, pooling, normalization,
# recurrent, embedding, attention, resizing, control flow, variables).  Anything else (ReadFile,
# WriteFile, MatchingFiles, PyFunc, EagerPyFunc, PrintV2, ...) needs trust.
ALLOWED_OPS = frozenset("""
Abs Acos Acosh Add AddN AddV2 All Any ApproximateEqual ArgMax ArgMin Asin Asinh Assert AssignAddVariableOp
AssignSubVariableOp AssignVariableOp Atan Atan2 Atanh AvgPool AvgPool3D BatchMatMul BatchMatMulV2 BatchMatMulV3
BatchToSpaceND BiasAdd BiasAddV1 BroadcastArgs BroadcastGradientArgs BroadcastTo Bucketize Case Cast Ceil
CheckNumerics ClipByValue ConcatOffset ConcatV2 Const Conv2D Conv2DBackpropInput Conv3D Conv3DBackpropInputV2
Cos Cosh CropAndResize Cumprod Cumsum CudnnRNN CudnnRNNBackprop CudnnRNNBackpropV2 CudnnRNNBackpropV3
CudnnRNNCanonicalToParams CudnnRNNCanonicalToParamsV2 CudnnRNNParamsSize CudnnRNNParamsToCanonical
CudnnRNNParamsToCanonicalV2 CudnnRNNV2 CudnnRNNV3 DepthToSpace DepthwiseConv2dNative
DepthwiseConv2dNativeBackpropInput DestroyResourceOp DisableCopyOnRead Div DivNoNan Einsum Elu Empty EnsureShape
Equal Erf Erfc Exp ExpandDims Expm1 ExtractImagePatches Fill Floor FloorDiv FloorMod FusedBatchNorm
FusedBatchNormV2 FusedBatchNormV3 Gather GatherNd GatherV2 Gelu Greater GreaterEqual Identity IdentityN If InTopKV2
InvertPermutation IsFinite IsInf IsNan L2Loss LRN LeakyRelu LeftShift Less LessEqual LinSpace Log Log1p
LogSoftmax LogicalAnd LogicalNot LogicalOr MatMul MatrixBandPart MatrixDiag MatrixDiagPartV3 MatrixDiagV3
MatrixSetDiagV3 Max MaxPool MaxPool3D MaxPoolV2 MaxPoolWithArgmax Maximum Mean Merge Min Minimum MirrorPad Mod Mul
MulNoNan Neg NextAfter NoOp NonMaxSuppressionV3 NonMaxSuppressionV4 NonMaxSuppressionV5 NotEqual OneHot OnesLike
Pack Pad PadV2 PartitionedCall Placeholder PlaceholderWithDefault Pow PreventGradient Prod QuantizeAndDequantizeV2
RandomStandardNormal RandomUniform RandomUniformInt Range Rank ReadVariableOp RealDiv Reciprocal Relu Relu6
Reshape ResizeArea ResizeBicubic ResizeBilinear ResizeNearestNeighbor ResourceGather ResourceGatherNd Reverse
ReverseSequence ReverseV2 RightShift Rint Round Rsqrt ScatterNd Select SelectV2 Selu Shape ShapeN Sigmoid Sign Sin
Sinh Size Slice Snapshot Softmax Softplus Softsign SpaceToBatchND SpaceToDepth Split SplitV Sqrt Square
SquaredDifference Squeeze StatefulPartitionedCall StatelessIf StatelessRandomGetKeyCounter
StatelessRandomNormalV2 StatelessRandomUniformV2 StatelessWhile StopGradient StridedSlice Sub Sum Switch Tan Tanh
TensorListConcatV2 TensorListElementShape TensorListFromTensor TensorListGetItem TensorListLength
TensorListReserve TensorListSetItem TensorListStack TensorScatterAdd TensorScatterUpdate Tile TopKV2 Transpose
TruncateDiv TruncatedNormal Unique Unpack UnsortedSegmentSum VarHandleOp VarIsInitializedOp Where While Xdivy
Xlogy ZerosLike
""".split())
# Checkpoint ops: allowed only in the SavedModel's own save/restore functions, which nothing else calls.
SAVER_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename", "StringJoin",
                       "StaticRegexFullMatch"})
SAVER_FUNCTION = re.compile(r"^__inference__traced_(save|restore)_\d+$")


def scan_savedmodel(folder: Path) -> list[str]:
    """The op types of a SavedModel that are not on the allow-list (empty: computation only)."""
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel()
    try:
        model.ParseFromString((folder / "saved_model.pb").read_bytes())
    except Exception as err:  # noqa: BLE001 - a corrupt protobuf
        raise WhyzeroError(f"Could not read saved_model.pb ({type(err).__name__}). Received: {folder.name}") from None
    found: set[str] = set()
    for graph in model.meta_graphs:
        nodes = [(None, n) for n in graph.graph_def.node]
        for function in graph.graph_def.library.function:
            nodes.extend((function.signature.name, n) for n in function.node_def)
        for owner, node in nodes:
            if node.op in ALLOWED_OPS:
                calls = _called_functions(node)
                if owner is not None and not SAVER_FUNCTION.match(owner):  # the main graph's saver_def calls them
                    found.update(f"a call into '{c}'" for c in calls if SAVER_FUNCTION.match(c))
                continue
            if node.op in SAVER_OPS and owner is not None and SAVER_FUNCTION.match(owner):
                continue
            found.add(node.op)
    return sorted(found)


def _called_functions(node) -> list[str]:
    names = []
    for value in node.attr.values():
        if value.HasField("func"):
            names.append(value.func.name)
        names.extend(f.name for f in value.list.func)
    return names


def check_savedmodel(folder: Path, trust_model: bool) -> None:
    """Refuses, without trust, a SavedModel whose graph does more than compute, or a Keras-2 Lambda."""
    if trust_model:
        return
    unsafe = scan_savedmodel(folder)
    if unsafe:
        raise UnsafeModelError(f"The SavedModel's graph holds operations beyond computation: {', '.join(unsafe[:6])} "
                               "(file, process, Python or network access). Pass --trust-model if you trust its "
                               f"source. Received: {folder.name}")
    metadata = folder / "keras_metadata.pb"
    if metadata.exists():
        text = metadata.read_bytes().decode("utf-8", "replace")
        refuse_unsafe_layers(text, folder.name)
        if "__lambda__" in text or re.search(r'"function":\s*\["', text):
            raise UnsafeModelError(f"The model holds {UNSAFE_LAYERS['Lambda']}. Pass --trust-model if you trust "
                                   f"its source. Received: {folder.name}")

