"""The local cluster's stand-in for the DNS add-on: answers `<service>.<namespace>.svc.cluster.local` with the
Service's ClusterIP, read from the API server at each query (so a Service is resolvable as soon as it exists).

Why a stand-in: production clusters run CoreDNS, which no registry these machines reach ships for Kubernetes 1.20.
The runner hands the coordinator `http://<service>.<namespace>.svc:8000`, as in production; the pods' resolver is
configured by the real kubelet (clusterDNS, search path, ndots:5) and the ClusterIP leads to the pod through the real
kube-proxy. Only this name lookup is not the production component: A records of Services, nothing else (AAAA and
other types get an empty answer, every other name NXDOMAIN; no upstream resolver, there is no network anyway).

usage: service-dns.py LISTEN_IP PORT KUBECONFIG      (stdlib only: runs on the host's python3)
"""
from __future__ import annotations

import json
import re
import socket
import socketserver
import ssl
import struct
import sys
import urllib.request

SERVICE = re.compile(r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?)\.([a-z0-9]([a-z0-9-]*[a-z0-9])?)\.svc\.cluster\.local$")
TYPE_A, CLASS_IN, TTL_S = 1, 1, 5
NOERROR, SERVFAIL, NXDOMAIN = 0, 2, 3


def _kubeconfig(path: str) -> tuple[str, str]:
    """(server, token) of up.sh's kubeconfig (flow-style YAML it wrote itself)."""
    text = open(path).read()
    return re.search(r'server: "([^"]+)"', text).group(1), re.search(r"token: ([0-9a-f]+)", text).group(1)


def cluster_ip(server: str, token: str, namespace: str, name: str) -> str | None:
    # A list with a field selector: system:node-proxier may list and watch Services, not get one by name.
    request = urllib.request.Request(f"{server}/api/v1/namespaces/{namespace}/services"
                                     f"?fieldSelector=metadata.name%3D{name}",
                                     headers={"Authorization": f"Bearer {token}"})
    context = ssl._create_unverified_context()        # the API server's self-signed certificate on 127.0.0.1
    with urllib.request.urlopen(request, context=context, timeout=5) as response:
        ips = [item["spec"].get("clusterIP") for item in json.load(response)["items"]]
    return next((ip for ip in ips if ip and ip != "None"), None)


def _question(packet: bytes) -> tuple[str, int, int]:
    """(name, type, end offset of the question) of a query's first question."""
    labels, i = [], 12
    while packet[i]:
        labels.append(packet[i + 1:i + 1 + packet[i]].decode("ascii", "replace"))
        i += 1 + packet[i]
    qtype, _ = struct.unpack("!HH", packet[i + 1:i + 5])
    return ".".join(labels).lower(), qtype, i + 5


def answer(packet: bytes, server: str, token: str) -> bytes:
    (query_id, flags), (name, qtype, end) = struct.unpack("!HH", packet[:4]), _question(packet)
    rcode, records = NXDOMAIN, b""
    if match := SERVICE.match(name):
        try:
            ip = cluster_ip(server, token, match.group(3), match.group(1))
            rcode = NOERROR if ip else NXDOMAIN
        except (OSError, ValueError):
            ip, rcode = None, SERVFAIL
        if ip and qtype == TYPE_A:
            # The name is a pointer to the question (offset 12); one A record.
            records = struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL_S, 4) + socket.inet_aton(ip)
    # QR, the query's opcode and RD, AA (authoritative for cluster.local); one question, one or no answer.
    reply_flags = 0x8000 | (flags & 0x7900) | 0x0400 | rcode
    return struct.pack("!HHHHHH", query_id, reply_flags, 1, 1 if records else 0, 0, 0) + packet[12:end] + records


def main() -> None:
    listen_ip, port, kubeconfig = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    server, token = _kubeconfig(kubeconfig)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            packet, sock = self.request
            try:
                sock.sendto(answer(packet, server, token), self.client_address)
            except (IndexError, struct.error, UnicodeError):
                pass                                  # not a DNS query: no answer, as a resolver would do

    with socketserver.ThreadingUDPServer((listen_ip, port), Handler) as udp:
        udp.serve_forever()


if __name__ == "__main__":
    main()
