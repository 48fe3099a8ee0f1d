"""Staff web consoles: sign-in and sessions (session.py, web.py) shared by every console."""
