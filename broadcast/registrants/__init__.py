"""People and their consent: registrants, contact rules, the consent ledger, suppression, double
opt-in, signed links.
"""
