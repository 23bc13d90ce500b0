"""slowdns.py - a small DNS server on loopback UDP that answers every query
NXDOMAIN after a delay, each query in its own thread, and counts how many
queries it held at once: what a test needs to see whether a program asks
its lookups one after another or together.  (unbound, which the other
tests use, answers at once and cannot be told to wait.)"""
import socket
import struct
import threading
import time

from tap import free_port


class SlowDns:
    def __init__(self, delay=0.3):
        self.delay = delay
        self.port = free_port()
        self.address = f"127.0.0.1@{self.port}"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.settimeout(0.2)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0               # the most queries held at once
        self.names = []             # the names asked, in arrival order
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def reset(self):
        with self.lock:
            self.most = 0
            self.names = []

    @staticmethod
    def _qname(packet):
        labels, pos = [], 12
        while pos < len(packet) and packet[pos]:
            n = packet[pos]
            labels.append(packet[pos + 1:pos + 1 + n].decode("ascii", "replace"))
            pos += 1 + n
        return ".".join(labels), pos + 1 + 4     # the question's end

    def _answer(self, packet, peer):
        name, end = self._qname(packet)
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.names.append(name.lower())
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= 1
        (qid, flags) = struct.unpack("!HH", packet[:4])
        # QR, AA, RD as asked, RA; NXDOMAIN; the question, no records
        reply = struct.pack("!HHHHHH", qid, 0x8400 | (flags & 0x0100) | 0x0080 | 3, 1, 0, 0, 0)
        try:
            self.sock.sendto(reply + packet[12:end], peer)
        except OSError:
            pass

    def _serve(self):
        while not self.stopping:
            try:
                packet, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(packet) > 12:
                threading.Thread(target=self._answer, args=(packet, peer), daemon=True).start()

    def stop(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()
