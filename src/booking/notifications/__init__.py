"""Notifications: SMS senders (Twilio, console) and Twilio webhook signatures."""
