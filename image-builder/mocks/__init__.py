"""Real servers on 127.0.0.1 standing in for a cloud: EC2 metadata, NoCloud URL, phone-home."""
