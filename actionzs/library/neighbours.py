"""Nearest frames of a video library by cosine similarity: an exact index and an approximate one.

Frame embeddings are unit vectors stored as float16 (half the memory of float32, and more precision
than the embeddings carry). Both indexes keep those float16 vectors and give every result's
similarity as the exact inner product of the float32 query with the stored float16 vector (the
products summed in float64, rounded once to float32): which index served a search changes at most
which frames come back, never a frame's score.

`ExactIndex` compares every query with every vector (in bounded chunks); `FaissIndex` finds
candidates with a faiss IVF index and re-scores them exactly. `build_index` picks one by size.
faiss is imported only when a `FaissIndex` is built or loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from abc import ABC, abstractmethod
from typing import TypeVar

import numpy as np

from actionzs.atomic import atomic_file
from actionzs.errors import InvalidInputError

#: Libraries with fewer vectors than this get an `ExactIndex`. Exact search reads every stored
#: vector: benchmarks/library_search.py measured one query over 3.6 M 512-d vectors on 2 cores at
#: 0.26 s on a quiet machine (72 ms per million vectors) and 0.99 s while other processes took half
#: of it (274 ms per million). 150,000 vectors then take 11-41 ms, inside the 50 ms search goal even
#: on a busy machine, with no build, no training and no approximation; above it the faiss index
#: takes ~15 ms at 3.6 M.
FAISS_THRESHOLD = 150_000

#: How far a stored vector's or a query's length may be from 1 (float16 rounding moves a unit
#: vector's norm by ~1e-3 at most).
NORM_TOLERANCE = 1e-2

_CHUNK_ROWS = 32_768  # rows converted to float32 at once: 64 MiB at 512-d
_QUERY_CHUNK = 256  # queries scored against a chunk at once: a 32 MiB score block
_EXACT_SLACK = 32  # extra candidates the approximate pass keeps per query before exact re-scoring
#: Most queries scored through float16 products (one pass over the rows per query); more go
#: through one float32 conversion of each chunk, shared by all of them.
_HALF_QUERIES = 8
#: Bound on |approximate score - exact score|: the float16 path rounds each result to float16 (half
#: a unit in the last place is 2.4e-4 below 1, 4.9e-4 up to 1.02, the longest vectors allowed); the
#: query's own float16 rounding adds up to 2^-11 times the score's size; summing 512 products in
#: float32 adds ~3e-5. 2e-3 covers all three with room.
_APPROX_ERROR = 2e-3

T = TypeVar("T", bound="NeighbourIndex")


# --- argument checks -------------------------------------------------------------------------------

def _check_ids(ids: np.ndarray, count: int) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.shape[0] != count:
        raise InvalidInputError(f"ids must be a 1-D array of {count} ids (one per vector), got shape {ids.shape}")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise InvalidInputError(f"ids must be integers, got {ids.dtype}")
    ids = ids.astype(np.int64, copy=False)
    if ids.size and ids.min() < 0:
        raise InvalidInputError(f"ids must be non-negative (faiss reserves -1), got {int(ids.min())}")
    if np.unique(ids).size != ids.size:
        raise InvalidInputError("ids must be unique; some id is given twice")
    return ids


def _check_unit(vectors: np.ndarray, dim: int | None, what: str) -> np.ndarray:
    """`vectors` as a 2-D float array of `dim` columns whose rows are finite and of unit length
    (checked in chunks: no float32 copy of the whole)."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise InvalidInputError(f"{what} must be a 2-D array [count, dim], got shape {vectors.shape}")
    if dim is not None and vectors.shape[1] != dim:
        raise InvalidInputError(f"{what} have dimension {vectors.shape[1]}, the index holds {dim}-d vectors")
    if vectors.shape[1] == 0:
        raise InvalidInputError(f"{what} have dimension 0")
    if not np.issubdtype(vectors.dtype, np.floating):
        raise InvalidInputError(f"{what} must be float16 or float32, got {vectors.dtype}")
    for start in range(0, len(vectors), _CHUNK_ROWS):
        chunk = vectors[start:start + _CHUNK_ROWS].astype(np.float32)
        norms = np.sqrt(np.einsum("ij,ij->i", chunk, chunk))
        bad = np.flatnonzero(~(np.abs(norms - 1) <= NORM_TOLERANCE))  # NaN and inf fail too
        if bad.size:
            row = start + int(bad[0])
            raise InvalidInputError(f"{what}: row {row} has length {norms[bad[0]]:.4g}; rows must be finite "
                                    f"unit vectors (length 1 within {NORM_TOLERANCE})")
    return vectors


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")
    return int(k)


# --- exact scores and ranking ------------------------------------------------------------------------

def exact_similarity(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Similarity float32 [Q, C] of each query [Q, D] with its own candidates [Q, C, D] (float16):
    the products summed in float64 and rounded once, so the figure does not depend on how a BLAS
    splits the sum (a float16 times a float32 is exact in float64)."""
    return np.matmul(vectors.astype(np.float64), queries.astype(np.float64)[:, :, None])[:, :, 0].astype(np.float32)


def _approximate_scores(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Scores float32 [Q, C] of float32 queries with a chunk of float16 vectors, within
    `_APPROX_ERROR`. A few queries: torch's float16 matrix-vector product, which reads the float16
    rows as they are (float32 sums, float16 results: ~4x faster than converting the chunk first).
    More: the chunk converted to float32 once, for a float32 matrix product."""
    if len(queries) > _HALF_QUERIES:
        return queries @ vectors.astype(np.float32).T
    import torch

    rows = torch.from_numpy(np.ascontiguousarray(vectors))
    half = torch.from_numpy(queries).half()
    return np.stack([torch.mv(rows, q).float().numpy() for q in half]) if len(half) else np.empty((0, len(rows)), np.float32)


def _top_columns(scores: np.ndarray, keep: int) -> np.ndarray:
    """Column indices of the `keep` highest scores of each row (unordered)."""
    if scores.shape[1] <= keep:
        return np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    return np.argpartition(-scores, keep - 1, axis=1)[:, :keep]


def _best_first(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` best of each row, by score descending and, among equal scores, id ascending."""
    by_id = np.argsort(ids, axis=1, kind="stable")
    scores, ids = np.take_along_axis(scores, by_id, 1), np.take_along_axis(ids, by_id, 1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)


# --- the stored vectors --------------------------------------------------------------------------------

class _Rows:
    """The float16 vectors and their ids, packed in rows 0..count-1 (removal moves the last rows into
    the holes), with a sorted copy of the ids to find an id's row."""

    def __init__(self, dim: int, capacity: int = 0):
        self.dim = dim
        self.count = 0
        self._vectors = np.empty((capacity, dim), np.float16)
        self._ids = np.empty(capacity, np.int64)
        self._sorted_ids = np.empty(0, np.int64)
        self._sorted_rows = np.empty(0, np.int64)

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors[:self.count]

    @property
    def ids(self) -> np.ndarray:
        return self._ids[:self.count]

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id, -1 where the id is not stored."""
        if not self.count:
            return np.full(len(ids), -1, np.int64)
        at = np.minimum(np.searchsorted(self._sorted_ids, ids), self.count - 1)
        return np.where(self._sorted_ids[at] == ids, self._sorted_rows[at], -1)

    def check_new(self, ids: np.ndarray) -> None:
        taken = self.rows_of(ids) >= 0
        if taken.any():
            raise InvalidInputError(f"id {int(ids[np.argmax(taken)])} is already in the index; remove it first")

    def append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        needed = self.count + len(ids)
        if needed > len(self._ids):
            capacity = max(needed, len(self._ids) * 3 // 2)  # amortised growth, not doubling 3.7 GB
            grown = np.empty((capacity, self.dim), np.float16)
            grown[:self.count] = self.vectors
            self._vectors = grown
            self._ids = np.concatenate([self.ids, np.empty(capacity - self.count, np.int64)])
        for start in range(0, len(ids), _CHUNK_ROWS):
            chunk = vectors[start:start + _CHUNK_ROWS]
            self._vectors[self.count + start:self.count + start + len(chunk)] = chunk
        self._ids[self.count:needed] = ids
        self.count = needed
        self._sort()

    def remove(self, ids: np.ndarray) -> np.ndarray:
        """Remove the stored ones of `ids`; returns those."""
        rows = self.rows_of(ids)
        holes = np.sort(rows[rows >= 0])
        removed = self._ids[holes].copy()
        keep = self.count - holes.size
        # Rows at or past `keep` that survive fill the holes below `keep`.
        fill = np.setdiff1d(np.arange(keep, self.count), holes, assume_unique=True)
        low = holes[holes < keep]
        self._vectors[low] = self._vectors[fill]
        self._ids[low] = self._ids[fill]
        self.count = keep
        self._sort()
        return removed

    def _sort(self) -> None:
        self._sorted_rows = np.argsort(self.ids, kind="stable")
        self._sorted_ids = self.ids[self._sorted_rows]


# --- the file format -------------------------------------------------------------------------------

_MAGIC = b"AZSNEIGH"
_VERSION = 1
_PREAMBLE = struct.Struct("<8sIIQ32s")  # magic, version, header length, payload length, blake2b-256
_MAX_HEADER = 1 << 16
_IO_CHUNK = 16 << 20


def _write(path: str | os.PathLike, kind: str, rows: _Rows, extra: dict, index=None) -> None:
    """Preamble, JSON header, then the payload: ids, float16 vectors, and the faiss index's own
    serialised bytes (streamed: no copy of the index in memory). The payload length and checksum
    are filled in at the end."""
    header = json.dumps({"kind": kind, "dim": rows.dim, "count": rows.count, **extra}).encode()
    digest = hashlib.blake2b(header, digest_size=32)
    with atomic_file(path, "wb") as handle:
        handle.write(_PREAMBLE.pack(_MAGIC, _VERSION, len(header), 0, bytes(32)))
        handle.write(header)
        length = 0

        def put(data) -> int:
            nonlocal length
            digest.update(data)
            handle.write(data)
            length += len(data)
            return len(data)

        for array in (rows.ids, rows.vectors):
            view = memoryview(np.ascontiguousarray(array)).cast("B")
            for start in range(0, len(view), _IO_CHUNK):
                put(view[start:start + _IO_CHUNK])
        if index is not None:
            import faiss

            faiss.write_index(index, faiss.PyCallbackIOWriter(put))
        handle.seek(0)
        handle.write(_PREAMBLE.pack(_MAGIC, _VERSION, len(header), length, digest.digest()))


def _read(path: str | os.PathLike) -> tuple[dict, _Rows, np.ndarray]:
    """Header, rows and the faiss bytes of a file `_write` wrote. Only the preamble and the small
    JSON header are parsed before the checksum of header and payload has been checked."""
    name = os.fspath(path)

    def bad(reason: str) -> InvalidInputError:
        return InvalidInputError(f"{name}: not a readable neighbour index: {reason}")

    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise InvalidInputError(f"{name}: cannot open neighbour index: {exc.strerror or exc}") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        preamble = handle.read(_PREAMBLE.size)
        if len(preamble) < _PREAMBLE.size:
            raise bad(f"{size} bytes, shorter than the {_PREAMBLE.size}-byte preamble")
        magic, version, header_length, payload_length, expected = _PREAMBLE.unpack(preamble)
        if magic != _MAGIC:
            raise bad("no neighbour-index magic number at the start (a foreign file?)")
        if version != _VERSION:
            raise bad(f"format version {version}; this version of actionzs reads version {_VERSION}")
        if header_length > _MAX_HEADER or size != _PREAMBLE.size + header_length + payload_length:
            raise bad(f"{size} bytes, the preamble says {_PREAMBLE.size + header_length + payload_length} "
                      "(truncated or damaged)")
        header_bytes = handle.read(header_length)
        try:
            header = json.loads(header_bytes)
            kind, dim, count = header["kind"], header["dim"], header["count"]
        except (ValueError, KeyError, TypeError):
            raise bad("its header is not the expected JSON (damaged)") from None
        if kind not in _KINDS or not all(isinstance(v, int) and v > 0 for v in (dim, count + 1)):
            raise bad(f"unexpected header {header!r}")
        if count * 8 + count * dim * 2 > payload_length:
            raise bad(f"payload of {payload_length} bytes cannot hold {count} vectors of dimension {dim}")
        # Read straight into the arrays kept (no second copy), hashing as the bytes arrive.
        digest = hashlib.blake2b(header_bytes, digest_size=32)
        ids = np.empty(count, np.int64)
        vectors = np.empty((count, dim), np.float16)
        rest = np.empty(payload_length - ids.nbytes - vectors.nbytes, np.uint8)
        for array in (ids, vectors, rest):
            view = memoryview(array).cast("B")
            for start in range(0, len(view), _IO_CHUNK):
                part = view[start:start + _IO_CHUNK]
                if handle.readinto(part) != len(part):
                    raise bad("shorter than it was a moment ago (truncated while reading)")
                digest.update(part)
    if digest.digest() != expected:
        raise bad("checksum mismatch: the file is damaged")
    if np.unique(ids).size != count:
        raise bad("ids are not unique")
    rows = _Rows(dim)
    rows.count, rows._ids, rows._vectors = count, ids, vectors
    rows._sort()
    return header, rows, rest


# --- the indexes -----------------------------------------------------------------------------------

class NeighbourIndex(ABC):
    """Nearest frames by cosine similarity (inner product of unit vectors)."""

    dim: int

    def __init__(self, rows: _Rows):
        self._rows = rows
        self.dim = rows.dim

    def __len__(self) -> int:
        return self._rows.count

    @property
    def ids(self) -> np.ndarray:
        """The stored ids (int64), in storage order."""
        return self._rows.ids

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Store unit `vectors` (float16 or float32 [N, dim]) under new unique int64 `ids` [N]."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> None:
        """Forget the vectors of `ids`; ids not stored are ignored."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` nearest stored vectors of each unit query (float32 [Q, dim]): (similarity float32
        [Q, k'], ids int64 [Q, k']) best first, k' = min(k, len(self)); equal similarities in id order."""

    @abstractmethod
    def save(self, path: str | os.PathLike) -> None:
        """Write the index to `path` atomically (a temporary file in its folder, then a rename)."""

    @classmethod
    def load(cls: type[T], path: str | os.PathLike) -> T:
        """The index `save` wrote to `path`. A damaged, truncated or foreign file raises
        InvalidInputError naming it: the checksum is checked before faiss parses a byte. (The
        checksum detects damage, not forgery: load only files this library wrote.)"""
        header, rows, rest = _read(path)
        kind = _KINDS[header["kind"]]
        if not issubclass(kind, cls):
            raise InvalidInputError(f"{os.fspath(path)}: holds a {kind.__name__}, not a {cls.__name__}")
        return kind._from_file(path, header, rows, rest)

    def _check_queries(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, int]:
        k = _check_k(k)
        queries = _check_unit(queries, self.dim, "queries").astype(np.float32, copy=False)
        return queries, min(k, len(self))

    def _validated(self, ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vectors = _check_unit(vectors, self.dim, "vectors")
        ids = _check_ids(ids, len(vectors))
        self._rows.check_new(ids)
        return ids, vectors


class ExactIndex(NeighbourIndex):
    """Every query against every stored vector: float32 matrix products over chunks of
    `_CHUNK_ROWS` rows (memory stays bounded: one float32 chunk and one score block at a time),
    then the best candidates re-scored exactly. The reference the approximate index is measured by."""

    def __init__(self, dim: int, capacity: int = 0):
        super().__init__(_Rows(dim, capacity))

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray) -> ExactIndex:
        """An exact index of unit `vectors` [N, D] under `ids` [N]."""
        vectors = _check_unit(vectors, None, "vectors")
        index = cls(vectors.shape[1], len(vectors))
        index._rows.append(_check_ids(ids, len(vectors)), vectors)
        return index

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = self._validated(ids, vectors)
        self._rows.append(ids, vectors)

    def remove(self, ids: np.ndarray) -> None:
        self._rows.remove(np.asarray(ids, np.int64).ravel())

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries, k = self._check_queries(queries, k)
        scores, ids = [], []
        for start in range(0, len(queries), _QUERY_CHUNK):
            s, i = self._search_chunk(queries[start:start + _QUERY_CHUNK], k)
            scores.append(s)
            ids.append(i)
        if not scores:
            return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
        return np.concatenate(scores), np.concatenate(ids)

    def _search_chunk(self, queries: np.ndarray, k: int, keep: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Keep the best `keep` rows per query by approximate score, re-score those exactly, and
        prove the top k: a row left out scores at most its approximate score + `_APPROX_ERROR`, so
        if that is below the k-th exact score it cannot belong. Queries where that proof fails are
        searched again with four times the candidates."""
        keep = min(k + _EXACT_SLACK if keep is None else keep, len(self))
        rows, floor = self._candidates(queries, keep)
        exact = exact_similarity(queries, self._rows.vectors[rows])
        scores, ids = _best_first(exact, self._rows.ids[rows], k)
        if keep < len(self) and k:
            unsure = np.flatnonzero(floor + _APPROX_ERROR >= scores[:, k - 1])
            if unsure.size:
                scores[unsure], ids[unsure] = self._search_chunk(queries[unsure], k, keep * 4)
        return scores, ids

    def _candidates(self, queries: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows [Q, keep] of the best approximate scores of each query, chunk after chunk, and the
        lowest approximate score kept [Q] (every row left out scores at most that)."""
        best_scores = np.empty((len(queries), 0), np.float32)
        best_rows = np.empty((len(queries), 0), np.int64)
        vectors = self._rows.vectors
        for start in range(0, len(vectors), _CHUNK_ROWS):
            scores = _approximate_scores(queries, vectors[start:start + _CHUNK_ROWS])
            rows = _top_columns(scores, keep)
            scores = np.concatenate([best_scores, np.take_along_axis(scores, rows, 1)], axis=1)
            rows = np.concatenate([best_rows, rows + start], axis=1)
            top = _top_columns(scores, keep)
            best_scores, best_rows = np.take_along_axis(scores, top, 1), np.take_along_axis(rows, top, 1)
        return best_rows, best_scores.min(axis=1, initial=np.inf)

    def save(self, path: str | os.PathLike) -> None:
        _write(path, "exact", self._rows, {})

    @classmethod
    def _from_file(cls, path, header: dict, rows: _Rows, rest: np.ndarray) -> ExactIndex:
        if rest.size:
            raise InvalidInputError(f"{os.fspath(path)}: not a readable neighbour index: {rest.size} bytes past the vectors")
        index = cls(rows.dim)
        index._rows = rows
        return index


class FaissIndex(NeighbourIndex):
    """Approximate search: a faiss IVF index with 8-bit scalar quantisation (`IVF{nlist},SQ8`, inner
    product, residuals encoded) finds `rerank` candidates per query among the `nprobe` nearest of
    `nlist` lists; the candidates are re-scored exactly with the stored float16 vectors.

    Settings, from benchmarks/library_search.py (3.6 M video-shaped 512-d vectors, 2 cores, single
    queries): nlist = `default_nlist(N)` (1024 there: lists of ~3,500; more lists would cost more in
    the build, whose time is mostly assigning every vector to its list); nprobe = 32: ~15 ms median,
    ~23 ms p95, recall@20 1.000 (nprobe 8 already gave 1.000 on that data in ~5 ms; 32 keeps a margin
    for embeddings that cluster less than the generated ones, and nprobe 128 passes 50 ms); rerank =
    200. SQ8 keeps the list scan at 1 byte per dimension and its ranking error (~1e-3 in cosine)
    small enough that the true top 20 is within the top `rerank` of the scan; the exact re-score then
    orders them.
    Memory: the float16 vectors (2 bytes x D per vector) plus the SQ8 codes (1 byte x D + 8 for the id).
    """

    DEFAULT_NPROBE = 32
    DEFAULT_RERANK = 200
    #: Training vectors per list (k-means quality against training time).
    TRAIN_PER_LIST = 64
    KMEANS_ITERATIONS = 10

    def __init__(self, rows: _Rows, index, rerank: int = DEFAULT_RERANK):
        super().__init__(rows)
        self._index = index
        self._ivf = _ivf_of(index)
        self.rerank = rerank

    @property
    def rerank(self) -> int:
        """Candidates per query re-scored exactly (at least k are)."""
        return self._rerank

    @rerank.setter
    def rerank(self, value: int) -> None:
        self._rerank = _check_k(value)

    @staticmethod
    def default_nlist(count: int) -> int:
        """Lists for `count` vectors: a power of two near sqrt(count) / 2, between 16 and 4096."""
        return int(2 ** np.clip(np.round(np.log2(max(count, 1) ** 0.5 / 2)), 4, 12))

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, *, nlist: int | None = None, nprobe: int = DEFAULT_NPROBE,
              rerank: int = DEFAULT_RERANK, seed: int = 0) -> FaissIndex:
        """Train the lists and the quantiser on a random sample of `vectors` (`TRAIN_PER_LIST` per
        list), then add all of them (converted to float32 a chunk at a time)."""
        import faiss

        vectors = _check_unit(vectors, None, "vectors")
        ids = _check_ids(ids, len(vectors))
        nlist = cls.default_nlist(len(vectors)) if nlist is None else int(nlist)
        if not 1 <= nlist <= len(vectors):
            raise InvalidInputError(f"nlist must be between 1 and the number of vectors ({len(vectors)}), got {nlist}")
        dim = vectors.shape[1]
        index = faiss.index_factory(dim, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        ivf = _ivf_of(index)
        ivf.cp.niter = cls.KMEANS_ITERATIONS
        ivf.cp.seed = seed
        ivf.cp.spherical = True  # unit vectors: keep the centroids on the sphere
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(len(vectors), min(len(vectors), nlist * cls.TRAIN_PER_LIST), replace=False))
        index.train(np.ascontiguousarray(vectors[sample], np.float32))
        rows = _Rows(dim, len(vectors))
        built = cls(rows, index, rerank)
        built.nprobe = min(nprobe, nlist)
        built._append(ids, vectors)
        return built

    @property
    def nlist(self) -> int:
        return self._ivf.nlist

    @property
    def nprobe(self) -> int:
        """Lists scanned per query: more is slower and finds more of the true neighbours."""
        return self._ivf.nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= self.nlist:
            raise InvalidInputError(f"nprobe must be an integer between 1 and nlist ({self.nlist}), got {value!r}")
        self._ivf.nprobe = int(value)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = self._validated(ids, vectors)
        self._append(ids, vectors)

    def _append(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        for start in range(0, len(vectors), _CHUNK_ROWS):
            chunk = np.ascontiguousarray(vectors[start:start + _CHUNK_ROWS], np.float32)
            self._index.add_with_ids(chunk, ids[start:start + _CHUNK_ROWS])
        self._rows.append(ids, vectors)

    def remove(self, ids: np.ndarray) -> None:
        removed = self._rows.remove(np.asarray(ids, np.int64).ravel())
        if removed.size:
            self._index.remove_ids(removed)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        queries, k = self._check_queries(queries, k)
        if k == 0:
            return np.empty((len(queries), 0), np.float32), np.empty((len(queries), 0), np.int64)
        wanted = min(max(self.rerank, k), len(self))
        _, found = self._index.search(queries, wanted)
        # A query whose probed lists hold fewer than k vectors scans every list instead.
        short = np.flatnonzero((found >= 0).sum(axis=1) < k)
        if short.size:
            everything = faiss.SearchParametersIVF(nprobe=self.nlist)
            found[short] = self._index.search(queries[short], wanted, params=everything)[1]
        scores, ids = [], []
        for start in range(0, len(queries), _QUERY_CHUNK):
            part = found[start:start + _QUERY_CHUNK]
            rows = self._rows.rows_of(part.ravel()).reshape(part.shape)
            exact = exact_similarity(queries[start:start + _QUERY_CHUNK], self._rows.vectors[np.maximum(rows, 0)])
            exact[rows < 0] = -np.inf
            s, i = _best_first(exact, np.where(rows < 0, np.iinfo(np.int64).max, part), k)
            scores.append(s)
            ids.append(i)
        return np.concatenate(scores), np.concatenate(ids)

    def save(self, path: str | os.PathLike) -> None:
        _write(path, "faiss", self._rows, {"nprobe": self.nprobe, "rerank": self.rerank}, self._index)

    @classmethod
    def _from_file(cls, path, header: dict, rows: _Rows, rest: np.ndarray) -> FaissIndex:
        import faiss

        name = os.fspath(path)
        nprobe, rerank = header.get("nprobe"), header.get("rerank")
        if not all(isinstance(v, int) and v > 0 for v in (nprobe, rerank)):
            raise InvalidInputError(f"{name}: not a readable neighbour index: bad nprobe/rerank in {header!r}")
        view, at = memoryview(rest), 0

        def take(size: int) -> bytes:
            nonlocal at
            at += size
            return bytes(view[at - size:at])

        try:
            index = faiss.read_index(faiss.PyCallbackIOReader(take))
            _ivf_of(index)
        except (RuntimeError, ValueError) as exc:
            raise InvalidInputError(f"{name}: not a readable neighbour index: faiss cannot read it ({exc})") from None
        if index.d != rows.dim or index.ntotal != rows.count or at != rest.size:
            raise InvalidInputError(f"{name}: not a readable neighbour index: its faiss index holds {index.ntotal} "
                                    f"{index.d}-d vectors, the file {rows.count} {rows.dim}-d ones")
        loaded = cls(rows, index, rerank)
        loaded.nprobe = min(nprobe, loaded.nlist)
        return loaded


def _ivf_of(index):
    import faiss

    return faiss.extract_index_ivf(index)


_KINDS: dict[str, type[NeighbourIndex]] = {"exact": ExactIndex, "faiss": FaissIndex}


def build_index(ids: np.ndarray, vectors: np.ndarray, *, exact: bool | None = None) -> NeighbourIndex:
    """An index of unit `vectors` (float16 or float32 [N, D]) under unique `ids` [N]: exact when
    `exact` is True, or when it is None and there are fewer than FAISS_THRESHOLD vectors; else a
    FaissIndex with its default settings. float16 input is converted a chunk at a time."""
    if exact is None:
        exact = len(vectors) < FAISS_THRESHOLD
    return ExactIndex.build(ids, vectors) if exact else FaissIndex.build(ids, vectors)
