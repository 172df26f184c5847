"""Coverage-guided fuzzing (atheris, libFuzzer) of each carrier codec's decoder: CMPP 2.0/3.0, SGIP 1.2,
SMGP 3.0, SMPP 3.4.

One target per protocol (``TARGETS``). Each feeds the fuzzer's bytes to the frame decoder and to the receipt
decoder of the protocol, and holds the codec to its contract:

* the decoders raise only ``PduError`` (the protocol's ``ProtocolError`` is one) — anything else is a crash;
* a PDU the decoder accepted is written back by the encoder without an exception other than ``PduError``,
  what the encoder writes decodes again, and writing that gives the same bytes (after the first write's
  documented normalisations, encode and decode are inverses: nothing changes from one hop to the next).

The seed corpus is every PDU class of the protocol with its default fields, encoded (so the fuzzer starts
from valid headers and mutates the bodies), plus one receipt per protocol.

Run (atheris is in the ``dev`` extra)::

    .venv/bin/python bench/fuzz_codecs.py cmpp -runs=1000000          # one protocol, 1,000,000 inputs
    .venv/bin/python bench/fuzz_codecs.py smpp -runs=1000000 -max_len=4096

A crash prints the input's traceback and writes it as ``crash-<sha1>`` in a temporary directory (the path is
printed; ``-artifact_prefix=DIR/`` to choose); keep it
as a regression case in ``tests/test_fuzz_codecs.py``. ``tests/test_fuzz_codecs.py`` runs each target for a
bounded number of inputs in CI; the 1,000,000-input figures are in bench/RESULTS.md.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qixin.protocols.errors import PduError

Target = Callable[[bytes], None]


def _protocols() -> dict[str, tuple[Any, Callable[[bytes], Any], Callable[[Any], bytes], Callable[[bytes], Any]]]:
    """protocol → (codec module, frame decoder, encoder of a decoded PDU, receipt decoder)."""
    from qixin.protocols.cmpp import codec as cmpp
    from qixin.protocols.sgip import codec as sgip
    from qixin.protocols.smgp import codec as smgp
    from qixin.protocols.smpp import codec as smpp

    return {
        "cmpp": (cmpp, cmpp.decode, lambda p: cmpp.encode(p, p.sequence), cmpp.decode_report),
        "cmpp20": (
            cmpp,
            lambda b: cmpp.decode(b, cmpp.VERSION_20),
            lambda p: cmpp.encode(p, p.sequence, cmpp.VERSION_20),
            lambda b: cmpp.decode_report(b, cmpp.VERSION_20),
        ),
        "sgip": (sgip, sgip.decode, lambda p: sgip.encode(p, p.sequence), lambda b: None),
        "smgp": (smgp, smgp.decode, lambda p: smgp.encode(p, p.sequence), smgp.decode_report),
        "smpp": (smpp, smpp.decode_pdu, smpp.encode_pdu, smpp.parse_receipt),
    }


def make_target(protocol: str) -> Target:
    _, decode, encode, decode_report = _protocols()[protocol]

    def one_input(data: bytes) -> None:
        try:
            decode_report(data)
        except PduError:
            pass
        try:
            pdu = decode(data)
        except PduError:
            return
        try:
            again = encode(pdu)
        except PduError:
            return  # decoding is lenient where encoding is strict (documented per codec): refused, not a crash
        back = decode(again)
        # one write normalises (e.g. SMPP writes an error response without its body, §4.4.2); after that
        # encode and decode are exact inverses: nothing a relay writes back changes on the next hop
        assert encode(back) == again, f"{protocol}: a written PDU decodes to another\n{pdu!r}\n{back!r}"

    return one_input


TARGETS = ("cmpp", "cmpp20", "sgip", "smgp", "smpp")


def seeds(protocol: str) -> list[bytes]:
    """Valid frames of every PDU class (default fields) and a receipt: where mutation starts."""
    mod, decode, _, _ = _protocols()[protocol]
    from qixin.protocols.cmpp import codec as cmpp
    from qixin.protocols.sgip import codec as sgip
    from qixin.protocols.smgp import codec as smgp
    from qixin.protocols.smpp import codec as smpp

    encoders: dict[str, Callable[[Any], bytes]] = {
        "cmpp": lambda p: cmpp.encode(p, 7),
        "cmpp20": lambda p: cmpp.encode(p, 7, cmpp.VERSION_20),
        "sgip": lambda p: sgip.encode(p, (1, 2, 3)),
        "smgp": lambda p: smgp.encode(p, 7),
        "smpp": smpp.encode_pdu,
    }
    out: list[bytes] = []
    for value in vars(mod).values():
        if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == mod.__name__:
            try:
                raw = encoders[protocol](value())
                decode(raw)
            except (PduError, TypeError):
                continue
            out.append(raw)
    if protocol == "smpp":
        out.append(b"id:1234567890 sub:001 dlvrd:001 submit date:2612021200 done date:2612021201 stat:DELIVRD err:000")
    return out


def main(argv: list[str]) -> None:
    import atheris  # the dev extra; imported here so the module (and its targets) loads without it

    if len(argv) < 2 or argv[1] not in TARGETS:
        raise SystemExit(f"usage: fuzz_codecs.py {{{','.join(TARGETS)}}} [libFuzzer flags, e.g. -runs=1000000]")
    protocol = argv[1]
    with atheris.instrument_imports(include=["qixin.protocols"]):
        import qixin.protocols.cmpp.codec
        import qixin.protocols.fields
        import qixin.protocols.sgip.codec
        import qixin.protocols.smgp.codec
        import qixin.protocols.smpp.codec  # noqa: F401
    flags = argv[2:]
    corpus = [a for a in flags if not a.startswith("-")]
    if not corpus:  # no corpus directory given: a fresh one with the seeds
        seed_dir = Path(tempfile.mkdtemp(prefix=f"fuzz-{protocol}-"))
        for i, raw in enumerate(seeds(protocol)):
            (seed_dir / f"seed-{i}").write_bytes(raw)
        flags.append(str(seed_dir))
    if not any(a.startswith("-artifact_prefix=") for a in flags):  # crash inputs outside the working tree
        flags.insert(0, f"-artifact_prefix={tempfile.mkdtemp(prefix=f'fuzz-{protocol}-crashes-')}/")
    atheris.Setup([argv[0], *flags], make_target(protocol))
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
