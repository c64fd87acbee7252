"""A DNS server for deploy/container/verify.sh: answers A queries for the names given
with their addresses, NXDOMAIN for every other name, and nothing but that. It serves
UDP on ADDRESS:53 inside the network namespace verify.sh creates, so the probe's
name resolution (getaddrinfo of the static glibc, through /etc/resolv.conf) is
tested without asking any real resolver.

    python3 loopback-dns.py ADDRESS NAME=IPV4...
"""
import socket
import struct
import sys


def main():
    names = {n.lower().rstrip("."): a for n, a in (x.split("=", 1) for x in sys.argv[2:])}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((sys.argv[1], 53))
    print("ready", flush=True)
    while True:
        query, peer = sock.recvfrom(512)
        if len(query) < 17:
            continue
        tid, _, qdcount = struct.unpack(">HHH", query[:6])
        i, labels = 12, []
        while i < len(query) and query[i] and qdcount == 1:
            labels.append(query[i + 1:i + 1 + query[i]].decode("ascii", "replace"))
            i += 1 + query[i]
        if i + 5 > len(query):
            continue
        (qtype,) = struct.unpack(">H", query[i + 1:i + 3])
        question = query[12:i + 5]
        name = ".".join(labels).lower()
        addr = names.get(name)
        print(f"query {name} type {qtype}: {addr or 'NXDOMAIN' if qtype == 1 else '-'}",
              flush=True)
        if addr and qtype == 1:
            answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(addr)
            header = struct.pack(">HHHHHH", tid, 0x8180, 1, 1, 0, 0)
        else:  # no AAAA records; NXDOMAIN for unknown names
            answer = b""
            header = struct.pack(">HHHHHH", tid, 0x8180 if addr else 0x8183, 1, 0, 0, 0)
        sock.sendto(header + question + answer, peer)


if __name__ == "__main__":
    main()
