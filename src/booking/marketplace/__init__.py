"""Actions Center (Reserve with Google) booking server, REST v3 (issue 16).

Field names and enums follow the published v3 reference; see docs/marketplaces.md for
the page each one comes from.
"""
