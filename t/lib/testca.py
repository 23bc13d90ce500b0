"""testca.py - a throwaway certificate authority for TLS tests, made with
the openssl command: a CA, server certificates it signs (with their chain
in one file, as a server presents it), and the digests TLSA records and
Postfix's fingerprint level name.

    ca = TestCA(tap.tempdir())
    cert, key = ca.issue("mx.example.test")     # chain file, key file
    ca.spki_sha256(cert)                         # TLSA 3 1 1 data
    ca.cert_sha256(ca.cert)                      # TLSA 2 0 1 data (the CA)
"""
import hashlib
import os
import subprocess


def _run(argv, data=None):
    r = subprocess.run(argv, input=data, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(" ".join(argv) + ": " + r.stderr.decode(errors="replace"))
    return r.stdout


class TestCA:
    def __init__(self, directory, name="postern test CA"):
        self.dir = directory
        self.cert = os.path.join(directory, "ca.pem")
        self.key = os.path.join(directory, "ca.key")
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "30", "-subj", "/CN=" + name,
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])

    def issue(self, *names):
        """A server certificate for names (the first is the CN); returns
        (chain file: certificate then CA, key file)."""
        base = os.path.join(self.dir, names[0])
        key, csr, cert = base + ".key", base + ".csr", base + ".pem"
        _run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", key, "-out", csr, "-subj", "/CN=" + names[0]])
        ext = base + ".ext"
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join("DNS:" + n for n in names) + "\n"
                    "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        _run(["openssl", "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
              "-CAcreateserial", "-out", cert, "-days", "30", "-extfile", ext])
        chain = base + ".chain.pem"
        with open(chain, "w") as f:
            f.write(open(cert).read() + open(self.cert).read())
        return chain, key

    @staticmethod
    def der(cert):
        """The first certificate of a PEM file, in DER."""
        return _run(["openssl", "x509", "-in", cert, "-outform", "DER"])

    def cert_sha256(self, cert):
        return hashlib.sha256(self.der(cert)).hexdigest()

    def spki_sha256(self, cert):
        pub = _run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"])
        der = _run(["openssl", "pkey", "-pubin", "-outform", "DER"], pub)
        return hashlib.sha256(der).hexdigest()
