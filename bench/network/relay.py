"""User-space impairment: UDP and TCP relays on 127.0.0.1 that a client connects through.

The kernel here has no netem (docs/PROTOCOLS.md), so each direction's Link is
applied by the relay in the event loop it is started in. One relay is one
access link: every flow through it shares each direction's loss process, rate
cap and queue; give each simulated user relays of their own.

Deliveries are scheduled on time.perf_counter and fired by one loop timer
per direction; asyncio's selector rounds its timeout up to the next
millisecond, so a delivery leaves up to ~1 ms after its scheduled time (more
when the loop is busy). That lateness is recorded per delivery, so a report
can tell the impairment that was asked for from what the relay itself added.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from time import perf_counter

import numpy as np

from bench.loopback import LOOPBACK
from bench.network.profiles import Link, NetworkProfile

Address = tuple[str, int]
MSS = 1460  # TCP payload per segment on a 1500-byte Ethernet MTU
RTO_MIN_S = 0.2  # Linux's TCP_RTO_MIN
DUPACK_THRESHOLD = 3  # segments after a loss that trigger fast retransmit (RFC 5681)
TLP_MIN_S = 0.01  # Linux's floor of the tail loss probe timeout (RFC 8985 PTO = 2 SRTT)
MAX_RETRIES = 15  # Linux's tcp_retries2: a segment lost this many times more resets the connection
WINDOW_BYTES = 4 << 20  # bytes one TCP direction may have scheduled and undelivered, like a receive window
READ_BYTES = 65536
RECV_BATCH = 256  # datagrams read per readiness callback, so one busy socket cannot starve the loop


@dataclass
class RelayStats:
    """One direction's traffic, and the relay's own cost.

    On TCP a packet is a segment, and a lost one is retransmitted: it counts
    in `lost` and is delivered later, so nothing is dropped. `lateness_ms`
    holds, per delivery, how long after its scheduled time it left the relay.
    """

    packets_in: int = 0
    bytes_in: int = 0
    packets_delivered: int = 0
    bytes_delivered: int = 0
    lost: int = 0  # by the link's loss model
    queue_dropped: int = 0  # UDP only: drop-tail at the rate cap's full queue
    send_errors: int = 0  # the socket refused the send (its buffer full, the peer gone)
    lateness_ms: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        late = np.asarray(self.lateness_ms, dtype=float)
        lateness: dict[str, float | int | None] = {"n": int(late.size), "p50": None, "p95": None, "max": None}
        if late.size:
            p50, p95 = (float(v) for v in np.percentile(late, [50, 95]))
            lateness.update(p50=p50, p95=p95, max=float(late.max()))
        return {
            "packets_in": self.packets_in,
            "bytes_in": self.bytes_in,
            "packets_delivered": self.packets_delivered,
            "bytes_delivered": self.bytes_delivered,
            "lost": self.lost,
            "queue_dropped": self.queue_dropped,
            "send_errors": self.send_errors,
            "lateness_ms": lateness,
        }


@dataclass
class PathStats:
    """Both directions of a relay: `up` is client -> target, `down` target -> client."""

    up: RelayStats = field(default_factory=RelayStats)
    down: RelayStats = field(default_factory=RelayStats)

    def to_dict(self) -> dict[str, object]:
        return {"up": self.up.to_dict(), "down": self.down.to_dict()}

    def reversed(self) -> PathStats:
        """For a relay whose client is the target (a WebRTC offer candidate's relay): up and down swap."""
        return PathStats(self.down, self.up)


def merge_paths(paths: list[PathStats]) -> PathStats:
    """All relays a case crossed, added up per direction (lateness samples pooled)."""
    merged = PathStats()
    for path in paths:
        for mine, theirs in ((merged.up, path.up), (merged.down, path.down)):
            for name in ("packets_in", "bytes_in", "packets_delivered", "bytes_delivered", "lost"):
                setattr(mine, name, getattr(mine, name) + getattr(theirs, name))
            mine.queue_dropped += theirs.queue_dropped
            mine.send_errors += theirs.send_errors
            mine.lateness_ms += theirs.lateness_ms
    return merged


class _DelayLine:
    """Deliveries in order of due time (perf_counter s) from a single loop timer; ties keep arrival order."""

    def __init__(self, stats: RelayStats) -> None:
        self._loop = asyncio.get_running_loop()
        self._stats = stats
        self._heap: list[tuple[float, int, int, Callable[[], bool]]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = math.inf

    def push(self, due: float, size: int, deliver: Callable[[], bool]) -> None:
        """Run `deliver` (True if it sent `size` bytes) at `due`, or now if that has passed."""
        heapq.heappush(self._heap, (due, next(self._order), size, deliver))
        if due <= perf_counter():
            self._fire()
        else:
            self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._heap.clear()

    def _fire(self) -> None:
        while self._heap and self._heap[0][0] <= perf_counter():
            due, _, size, deliver = heapq.heappop(self._heap)
            if deliver():
                self._stats.packets_delivered += 1
                self._stats.bytes_delivered += size
            else:
                self._stats.send_errors += 1
            self._stats.lateness_ms.append((perf_counter() - due) * 1000)
        self._arm()

    def _on_timer(self) -> None:
        self._timer, self._timer_due = None, math.inf
        self._fire()

    def _arm(self) -> None:
        due = self._heap[0][0] if self._heap else math.inf
        if due == self._timer_due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_due = None, due
        if self._heap:
            self._timer = self._loop.call_at(self._loop.time() + (due - perf_counter()), self._on_timer)


class _Path:
    """One direction's state: its seeded loss process, its rate cap's clock, its delay line."""

    def __init__(self, link: Link, seed: int, name: str) -> None:
        self.link = link
        self.stats = RelayStats()
        self.line = _DelayLine(self.stats)
        # separate generators: the loss pattern of a seed stays the same whatever the jitter draws
        self._loss_rng = random.Random(f"{seed}:{name}:loss")
        self._jitter_rng = random.Random(f"{seed}:{name}:jitter")
        self._bad = False
        self._busy_until = 0.0

    def arrived(self, size: int) -> None:
        self.stats.packets_in += 1
        self.stats.bytes_in += size

    def lost(self) -> bool:
        """The next packet's fate under random or Gilbert-Elliott loss (the chain moves first, then the draw)."""
        burst = self.link.burst
        if burst is None:
            return self.link.loss > 0 and self._loss_rng.random() < self.link.loss
        self._bad = self._loss_rng.random() >= burst.r if self._bad else self._loss_rng.random() < burst.p
        return self._loss_rng.random() < (burst.loss_bad if self._bad else burst.loss_good)

    def delay_s(self) -> float:
        """delay_ms plus normal jitter, redrawn while negative (truncated: a packet never arrives before it left)."""
        if not self.link.jitter_ms:
            return self.link.delay_ms / 1000
        delay = -1.0
        while delay < 0:
            delay = self._jitter_rng.gauss(self.link.delay_ms, self.link.jitter_ms)
        return delay / 1000

    def backlog_s(self, now: float) -> float:
        """How long the rate cap needs for what it has been given and not yet sent."""
        return max(0.0, self._busy_until - now)

    def queue_full(self, now: float, size: int) -> bool:
        """Drop-tail: the bytes waiting plus this packet exceed `queue_ms` at the rate (an idle link takes any)."""
        backlog = self.backlog_s(now)
        return backlog > 0 and backlog + self._transmit_s(size) > self.link.queue_ms / 1000

    def serialised(self, now: float, size: int) -> float:
        """When the rate cap has sent these `size` bytes after everything before them (`now` without a cap)."""
        self._busy_until = max(self._busy_until, now) + self._transmit_s(size)
        return self._busy_until

    def _transmit_s(self, size: int) -> float:
        return 0.0 if self.link.rate_kbps is None else size * 8 / (self.link.rate_kbps * 1000)


class UdpRelay:
    """Relays datagrams between clients and one UDP target, each direction impaired per datagram.

    A datagram from a new client address gets its own socket to the target,
    so the target sees a distinct source per client and its replies return
    to the right client. That is what lets a WebRTC client reach a server
    candidate through the relay with ICE working: STUN checks are answered
    to the address they came from, and the server learns the relay's socket
    as the client's (peer-reflexive) candidate. Per datagram: loss, then the
    rate cap's drop-tail queue, then delay + jitter; jitter can reorder.
    """

    def __init__(self) -> None:
        self.stats = PathStats()
        self._paths: tuple[_Path, ...] = ()
        self._sock: socket.socket | None = None
        self._flows: dict[Address, socket.socket] = {}

    async def start(self, target: Address, profile: NetworkProfile, seed: int = 0) -> Address:
        """Listen on a free 127.0.0.1 port and return it."""
        self._loop = asyncio.get_running_loop()
        self._target = target
        self._up, self._down = self._paths = (_Path(profile.up, seed, "up"), _Path(profile.down, seed, "down"))
        self.stats = PathStats(self._up.stats, self._down.stats)
        self._sock = _udp_socket()
        self._loop.add_reader(self._sock, self._from_clients)
        host, port = self._sock.getsockname()[:2]
        return host, port

    async def close(self) -> None:
        for sock in [*([self._sock] if self._sock else []), *self._flows.values()]:
            self._loop.remove_reader(sock)
            sock.close()
        self._sock, self._flows = None, {}
        for path in self._paths:
            path.line.close()

    def _from_clients(self) -> None:
        assert self._sock is not None
        for data, client in _receive(self._sock):
            upstream = self._flows.get(client) or self._open_flow(client)
            self._relay(self._up, data, upstream.send)

    def _open_flow(self, client: Address) -> socket.socket:
        upstream = _udp_socket()
        upstream.connect(self._target)
        self._flows[client] = upstream
        self._loop.add_reader(upstream, self._from_target, upstream, client)
        return upstream

    def _from_target(self, upstream: socket.socket, client: Address) -> None:
        assert self._sock is not None
        sock = self._sock
        for data, _ in _receive(upstream):
            self._relay(self._down, data, lambda datagram: sock.sendto(datagram, client))

    @staticmethod
    def _relay(path: _Path, data: bytes, send: Callable[[bytes], object]) -> None:
        now = perf_counter()
        path.arrived(len(data))
        if path.lost():
            path.stats.lost += 1
        elif path.queue_full(now, len(data)):
            path.stats.queue_dropped += 1
        else:
            path.line.push(path.serialised(now, len(data)) + path.delay_s(), len(data), partial(_send, send, data))


class TcpRelay:
    """Relays every connection it accepts to the target, each direction in order and impaired.

    The model, per direction (shared by all connections through the relay):
    - each chunk read is cut into 1460-byte segments (MSS); the rate cap
      sends them one after another; when more than `queue_ms` of bytes wait
      for the cap the relay stops reading (back-pressure, as a full TCP
      window does), so nothing is dropped for a full queue;
    - a segment is due when the cap has sent it, plus delay + jitter (one
      draw per chunk), and never before the previous segment of its
      connection: TCP delivers in order, so jitter delays but never reorders;
    - a lost segment is repaired as Linux's RACK-TLP does: within one RTT
      when at least three segments of the same write follow it (fast
      retransmit on duplicate ACKs), else by a tail loss probe after
      max(2 RTT, 10 ms); a lost retransmission waits an RTO of 200 ms (Linux's
      minimum) plus the RTT, doubling each time (after 15, Linux's
      tcp_retries2, the connection is reset); everything behind a lost
      segment waits for it (head-of-line blocking).
    Left out: congestion control (the sender does not slow down after a loss)
    and acknowledgements' own loss.
    """

    def __init__(self) -> None:
        self.stats = PathStats()
        self._paths: tuple[_Path, ...] = ()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, target: Address, profile: NetworkProfile, seed: int = 0) -> Address:
        """Listen on a free 127.0.0.1 port and return it."""
        self._target = target
        self._up, self._down = self._paths = (_Path(profile.up, seed, "up"), _Path(profile.down, seed, "down"))
        self.stats = PathStats(self._up.stats, self._down.stats)
        self._rtt_s = (profile.up.delay_ms + profile.down.delay_ms) / 1000
        self._rto_s = RTO_MIN_S + self._rtt_s
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        connections = list(self._connections)
        for task in connections:
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        for path in self._paths:
            path.line.close()

    def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        """Serve the connection in a task of our own: cancelling asyncio's callback task on close logs an error."""
        task = asyncio.create_task(self._serve(client_reader, client_writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        target_writer: asyncio.StreamWriter | None = None
        try:
            target_reader, target_writer = await asyncio.open_connection(*self._target)
            async with asyncio.TaskGroup() as pumps:
                pumps.create_task(self._pump(self._up, client_reader, target_writer))
                pumps.create_task(self._pump(self._down, target_reader, client_writer))
        except* OSError:
            pass  # a refused target, a reset peer or a segment lost too often: close both ends
        finally:
            for writer in (client_writer, target_writer):
                if writer is not None:
                    writer.close()

    async def _pump(self, path: _Path, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One direction of one connection until EOF, then a half-close once everything is delivered."""
        flight = _InFlight()
        last_due = 0.0
        read_bytes = _read_bytes(path.link)
        while data := await reader.read(read_bytes):
            now = perf_counter()
            delay = path.delay_s()
            for offset in range(0, len(data), MSS):
                segment = data[offset : offset + MSS]
                path.arrived(len(segment))
                followers = (len(data) - offset - 1) // MSS
                due = path.serialised(now, len(segment)) + delay + self._retransmission_s(path, followers)
                last_due = max(last_due, due)
                flight.add(len(segment))
                path.line.push(last_due, len(segment), partial(_write, writer, segment, flight))
            excess = path.backlog_s(perf_counter()) - path.link.queue_ms / 1000
            if excess > 0:
                await asyncio.sleep(excess)
            await flight.at_most(WINDOW_BYTES)
            await writer.drain()
        await flight.at_most(0)
        if writer.can_write_eof() and not writer.transport.is_closing():
            writer.write_eof()

    def _retransmission_s(self, path: _Path, followers: int) -> float:
        """Extra time a segment waits for its retransmissions: fast retransmit or a tail loss probe first,
        then the RTO, doubling per further loss."""
        first = self._rtt_s if followers >= DUPACK_THRESHOLD else max(2 * self._rtt_s, TLP_MIN_S)
        wait = 0.0
        for attempt in range(MAX_RETRIES + 1):
            if not path.lost():
                return wait
            path.stats.lost += 1
            wait += first if attempt == 0 else self._rto_s * 2 ** (attempt - 1)
        raise ConnectionAbortedError(f"a segment was lost {MAX_RETRIES + 1} times")


class _InFlight:
    """Bytes a TCP pump has scheduled and not yet written: the window it waits on."""

    def __init__(self) -> None:
        self.bytes = 0
        self._changed = asyncio.Event()

    def add(self, size: int) -> None:
        self.bytes += size

    def done(self, size: int) -> None:
        self.bytes -= size
        self._changed.set()

    async def at_most(self, limit: int) -> None:
        while self.bytes > limit:
            self._changed.clear()
            await self._changed.wait()


def _write(writer: asyncio.StreamWriter, segment: bytes, flight: _InFlight) -> bool:
    flight.done(len(segment))
    if writer.transport.is_closing():
        return False
    writer.write(segment)
    return True


def _send(send: Callable[[bytes], object], data: bytes) -> bool:
    try:
        send(data)
    except OSError:
        return False
    return True


def _read_bytes(link: Link) -> int:
    """Read at most one queue's worth under a rate cap, so back-pressure acts before a chunk overfills it."""
    if link.rate_kbps is None:
        return READ_BYTES
    return int(min(READ_BYTES, max(MSS, link.rate_kbps * 1000 / 8 * link.queue_ms / 1000)))


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind((LOOPBACK, 0))
    return sock


def _receive(sock: socket.socket) -> list[tuple[bytes, Address]]:
    """What the socket has now, up to RECV_BATCH datagrams; an ICMP error on a connected socket is skipped."""
    received: list[tuple[bytes, Address]] = []
    while len(received) < RECV_BATCH:
        try:
            data, address = sock.recvfrom(65535)
        except ConnectionRefusedError:
            continue
        except (BlockingIOError, InterruptedError):
            break
        received.append((data, address[:2]))
    return received
