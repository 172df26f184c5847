"""Compliance services (issue 4): the screener every send passes, lists, lexicon versions, complaints.

- ``service.ComplianceService`` — the ``screening.Screener`` and the MO opt-out listener;
- ``store`` — policies, opt-outs, blacklist, violations and freezing, lexicon versions (tx functions);
- ``ratelimit.RateGate`` — per-recipient frequency limits on the ``limits`` library;
- ``evidence`` — complaints and the evidence report;
- ``documents`` — signature applications' qualification documents.
"""
