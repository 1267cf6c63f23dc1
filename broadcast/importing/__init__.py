"""The CSV transfer import: reading, validating and writing a registrant list from another
organisation.
"""
