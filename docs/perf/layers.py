#!/usr/bin/env python3
"""Per-layer shares of a folded CPU profile of `arq serve` (inferno-collapse-perf output).

Each sample goes to the first layer whose rule matches its stack, in the order below (kernel time
of a send or receive first, then the ArqonBus layers from the inside out). Used by ci/profile.sh;
the tables in BENCHMARKS.md are its output.

    python3 docs/perf/layers.py target/perf/throughput-10.folded
"""
import collections
import sys

# per-layer attribution: first matching rule on the stack (leaf-most wins for kernel)
RULES=[
 ('kernel: TCP send (write syscalls)', lambda fr: any('tcp_sendmsg' in f or '__x64_sys_write' in f or 'sys_sendto' in f for f in fr)),
 ('kernel: TCP receive (read syscalls)', lambda fr: any('tcp_recvmsg' in f or '__x64_sys_read' in f or 'sys_recvfrom' in f for f in fr)),
 ('kernel: epoll / scheduler / other', lambda fr: fr[-1].endswith('_[k]')),
 ('Session machine step (arqon-core)', lambda fr: any('SessionMachine>::step' in f for f in fr)),
 ('policy chain', lambda fr: any('arqon_policy' in f for f in fr)),
 ('protobuf decode (client frame)', lambda fr: any('decode_client_frame' in f for f in fr)),
 ('protobuf encode (envelope, ack)', lambda fr: any('encode_envelope' in f or 'encode_to_vec' in f or 'with_position' in f for f in fr)),
 ('embedded spine + history log', lambda fr: any('arqon_spine' in f for f in fr)),
 ('hub forwarder (fan-out to queues)', lambda fr: any('Forwarder' in f for f in fr)),
 ('WebSocket write (tungstenite, writer task)', lambda fr: any('write_loop' in f or 'write_burst' in f for f in fr)),
 ('WebSocket read (tungstenite)', lambda fr: any('tungstenite' in f and ('read' in f.lower() or 'Stream' in f) for f in fr)),
 ('session driver (rest: effects, ack, admission)', lambda fr: any('arqon_shield::conn' in f for f in fr)),
 ('allocator', lambda fr: fr[-1].startswith('mi_') or fr[-1].startswith('_mi_')),
 ('tokio runtime', lambda fr: any('tokio::runtime' in f for f in fr)),
]
def main(path):
    tot=0; c=collections.Counter()
    for line in open(path):
        stack,n=line.rsplit(' ',1); n=int(n); tot+=n
        fr=stack.split(';')
        for name,rule in RULES:
            if rule(fr): c[name]+=n; break
        else: c['other']+=n
    for k,v in c.most_common(): print(f"{v*100/tot:5.1f}%  {k}")
main(sys.argv[1])
