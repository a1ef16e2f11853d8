"""The impairment relays do what a profile asks, through real loopback sockets, and say what they cost themselves.

Echo servers, relay and client share one event loop, as the relay shares the
harness's loop in a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import AsyncIterator

import pytest

from bench.network import PROFILES, Link, NetworkProfile, TcpRelay, UdpRelay, parse_network, rtt

Address = tuple[str, int]
PINGS = 30


class _UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.queue.put_nowait(data)


async def _tcp_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def echo(kind: str) -> AsyncIterator[Address]:
    """A UDP or TCP echo server on a free loopback port."""
    loop = asyncio.get_running_loop()
    if kind == "udp":
        transport, _ = await loop.create_datagram_endpoint(_UdpEcho, local_addr=("127.0.0.1", 0))
        yield transport.get_extra_info("sockname")[:2]
        transport.close()
    else:
        server = await asyncio.start_server(_tcp_echo, "127.0.0.1", 0)
        yield server.sockets[0].getsockname()[:2]
        server.close()


@contextlib.asynccontextmanager
async def relayed(kind: str, profile: NetworkProfile, seed: int = 0) -> AsyncIterator[tuple[Address, Address, object]]:
    """An echo server, and a relay to it: (direct address, relay address, relay)."""
    async with echo(kind) as direct:
        relay = UdpRelay() if kind == "udp" else TcpRelay()
        address = await relay.start(direct, profile, seed)
        try:
            yield direct, address, relay
        finally:
            await relay.close()


async def ping_ms(kind: str, address: Address, pings: int = PINGS) -> list[float]:
    """Round trips of 8-byte messages, one at a time."""
    times = []
    if kind == "udp":
        transport, inbox = await asyncio.get_running_loop().create_datagram_endpoint(_Inbox, remote_addr=address)
        for i in range(pings):
            start = time.perf_counter()
            transport.sendto(i.to_bytes(8, "big"))
            assert await asyncio.wait_for(inbox.queue.get(), 5) == i.to_bytes(8, "big")
            times.append((time.perf_counter() - start) * 1000)
        transport.close()
    else:
        reader, writer = await asyncio.open_connection(*address)
        for i in range(pings):
            start = time.perf_counter()
            writer.write(i.to_bytes(8, "big"))
            assert await asyncio.wait_for(reader.readexactly(8), 5) == i.to_bytes(8, "big")
            times.append((time.perf_counter() - start) * 1000)
        writer.close()
    return times


async def echoed_numbers(address: Address, count: int) -> set[int]:
    """Send `count` numbered datagrams and collect the echoes.

    Paced at ~10 a millisecond: asyncio's datagram transport (the echo
    server's) reads one datagram per loop iteration, so a faster burst
    overflows its socket buffer and the kernel, not the relay, drops them.
    """
    transport, inbox = await asyncio.get_running_loop().create_datagram_endpoint(_Inbox, remote_addr=address)
    for i in range(count):
        transport.sendto(i.to_bytes(4, "big"))
        if i % 10 == 9:
            await asyncio.sleep(0.001)
    received: set[int] = set()
    with contextlib.suppress(TimeoutError):
        while True:
            received.add(int.from_bytes(await asyncio.wait_for(inbox.queue.get(), 0.3), "big"))
    transport.close()
    return received


def bursts(count: int, received: set[int]) -> list[int]:
    """Lengths of the runs of consecutive missing numbers."""
    runs, run = [], 0
    for i in range(count):
        if i in received:
            runs, run = runs + [run] * bool(run), 0
        else:
            run += 1
    return runs + [run] * bool(run)


def one_way(link: Link) -> NetworkProfile:
    """`link` on the way up only, so every echo that comes back tells what the up link did."""
    return NetworkProfile("test", link, Link(), "test")


@pytest.mark.parametrize("kind", ["udp", "tcp"])
def test_rtt_100_adds_100_ms_to_the_round_trip(kind: str):
    async def go() -> tuple[float, float]:
        async with relayed(kind, rtt(100)) as (direct, address, _):
            return statistics.median(await ping_ms(kind, direct)), statistics.median(await ping_ms(kind, address))

    direct_ms, relayed_ms = asyncio.run(go())
    # each direction's timer fires up to ~1 ms late; 15 ms leaves room for a busy 2-core machine
    assert relayed_ms - direct_ms == pytest.approx(100, abs=15)


@pytest.mark.parametrize("kind", ["udp", "tcp"])
def test_a_zero_profile_costs_under_2_ms_and_reports_its_lateness(kind: str):
    async def go() -> tuple[float, float, dict]:
        async with relayed(kind, PROFILES["none"]) as (direct, address, relay):
            direct_ms = statistics.median(await ping_ms(kind, direct))
            relayed_ms = statistics.median(await ping_ms(kind, address))
            return direct_ms, relayed_ms, relay.stats.to_dict()  # type: ignore[attr-defined]

    direct_ms, relayed_ms, stats = asyncio.run(go())
    # two extra socket hops and a Python callback each way: tens of microseconds; 2 ms is the brief's bound
    assert relayed_ms - direct_ms < 2
    for direction in ("up", "down"):
        assert stats[direction]["packets_delivered"] == PINGS, "one datagram / segment per 8-byte ping"
        lateness = stats[direction]["lateness_ms"]
        assert lateness["n"] == PINGS
        assert 0 <= lateness["p50"] <= lateness["p95"] <= lateness["max"]
        # each round trip holds one delivery per direction, so the typical lateness fits inside the typical trip
        assert lateness["p50"] < relayed_ms


def test_random_loss_drops_5_percent_and_the_same_seed_drops_the_same_datagrams():
    count = 2000

    async def go(seed: int) -> tuple[set[int], dict]:
        async with relayed("udp", one_way(Link(loss=0.05)), seed) as (_, address, relay):
            received = await echoed_numbers(address, count)
            return received, relay.stats.to_dict()  # type: ignore[attr-defined]

    first, stats = asyncio.run(go(seed=7))
    again, _ = asyncio.run(go(seed=7))
    other, _ = asyncio.run(go(seed=8))
    lost = count - len(first)
    assert stats["up"]["packets_in"] == count, "every datagram reached the relay: the loss is the relay's"
    assert stats["down"]["packets_in"] == stats["up"]["packets_delivered"], "the echo server dropped none"
    assert stats["up"]["lost"] == lost and stats["down"]["lost"] == 0
    # binomial(2000, 0.05): 100 +- 9.7, so 3-8 % (60-160) is more than 4 standard deviations each side
    assert 0.03 * count <= lost <= 0.08 * count
    assert again == first, "a seed is a loss pattern, repeatable like aiortc's tests' loss_pattern"
    assert other != first


def test_gilbert_elliott_loss_comes_in_bursts_and_random_loss_does_not():
    count = 5000

    async def go(link: Link) -> set[int]:
        async with relayed("udp", one_way(link), seed=3) as (_, address, _relay):
            return await echoed_numbers(address, count)

    bursty = bursts(count, asyncio.run(go(PROFILES["loss-burst"].up)))
    random_ = bursts(count, asyncio.run(go(PROFILES["loss-5"].up)))
    # independent 5 % loss: a run continues with probability 0.05, mean 1 / 0.95 = 1.05
    assert statistics.mean(random_) < 1.3
    # the profile's chain leaves the bad state with r = 1/3: mean burst 3; ~80 bursts put the mean within +-0.6
    assert statistics.mean(bursty) > 1.5
    # stationary loss p / (p + r) = 5 %; bursts make the count vary more than binomial, hence the wider band
    assert 0.025 * count <= sum(bursty) <= 0.08 * count


def test_a_1000_kbps_cap_carries_a_tcp_transfer_at_1000_kbps():
    payload = os.urandom(300_000)

    async def go() -> tuple[float, bytes]:
        async with relayed("tcp", one_way(Link(rate_kbps=1000))) as (_, address, _relay):
            reader, writer = await asyncio.open_connection(*address)
            start = time.perf_counter()
            writer.write(payload)
            echoed = await asyncio.wait_for(reader.readexactly(len(payload)), 10)
            elapsed = time.perf_counter() - start
            writer.close()
            return elapsed, echoed

    elapsed, echoed = asyncio.run(go())
    assert echoed == payload
    # 2.4 s at the cap; the rest (loopback, the uncapped way back) is milliseconds
    assert len(payload) * 8 / elapsed / 1000 == pytest.approx(1000, rel=0.15)


def test_tcp_stays_in_order_under_jitter_and_loss():
    payload = os.urandom(200_000)

    async def go() -> tuple[bytes, dict]:
        profile = one_way(Link(delay_ms=20, jitter_ms=20, loss=0.05))
        async with relayed("tcp", profile, seed=1) as (_, address, relay):
            reader, writer = await asyncio.open_connection(*address)
            for offset in range(0, len(payload), 10_000):
                writer.write(payload[offset : offset + 10_000])
                await asyncio.sleep(0.01)  # separate reads, so chunks get different jitter draws
            echoed = await asyncio.wait_for(reader.readexactly(len(payload)), 20)
            writer.close()
            return echoed, relay.stats.to_dict()  # type: ignore[attr-defined]

    echoed, stats = asyncio.run(go())
    assert stats["up"]["lost"] > 0, "the loss path was exercised"
    assert echoed == payload


def test_a_lost_tcp_segment_waits_for_a_tail_loss_probe():
    """A lone segment (nothing follows it to trigger fast retransmit) lost once is repaired by a tail loss
    probe after 2 RTT: a ping whose segment is lost takes RTT + 2 RTT; lost twice, the RTO (200 ms + RTT) more."""

    async def go() -> tuple[list[float], dict]:
        profile = NetworkProfile("test", Link(delay_ms=25, loss=0.1), Link(delay_ms=25), "test")
        async with relayed("tcp", profile, seed=2) as (_, address, relay):
            return await ping_ms("tcp", address, pings=40), relay.stats.to_dict()  # type: ignore[attr-defined]

    times, stats = asyncio.run(go())
    fast = [t for t in times if t < 100]
    slow = [t for t in times if t >= 100]
    assert 1 <= len(slow) <= stats["up"]["lost"], "every slow ping had a lost segment"
    # timer lateness and loopback add a millisecond or two per trip; 15 ms is generous
    assert statistics.median(fast) == pytest.approx(50, abs=15)
    assert min(slow) == pytest.approx(50 + 100, abs=15)


def test_parse_network_names_tables_and_errors():
    assert parse_network("rtt-100") == rtt(100)
    custom = parse_network({"name": "lossy-dsl", "rtt_ms": 100, "loss": 0.01, "down": {"rate_kbps": 1500}})
    assert custom.name == "lossy-dsl"
    assert custom.up == Link(delay_ms=50, loss=0.01)
    assert custom.down == Link(delay_ms=50, loss=0.01, rate_kbps=1500)
    burst = PROFILES["loss-burst"].up.burst
    assert burst is not None
    assert 1 / burst.r == pytest.approx(3) and burst.p / (burst.p + burst.r) == pytest.approx(0.05)

    with pytest.raises(ValueError, match=r"unknown network profile '5g-ultra'; allowed: .*3g.*dsl.*rtt-<ms>") as error:
        parse_network("5g-ultra")
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"unknown key 'rtt' in network; allowed: .*rtt_ms"):
        parse_network({"rtt": 50})
    with pytest.raises(ValueError, match=r"unknown key 'latency' in network.up; allowed: delay_ms, jitter_ms"):
        parse_network({"up": {"latency": 50}})
    with pytest.raises(ValueError, match=r"network.down: loss must be in \[0, 1\)"):
        parse_network({"down": {"loss": 1.5}})
