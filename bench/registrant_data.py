"""Realistic fictional UK registrants: valid mobiles, landlines, emails, postcodes.

Numbers come from ranges that are valid under phonenumbers' metadata and addresses use the
reserved example domains, so nothing generated here belongs to a real person.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

FIRST = [
    "Amira",
    "Ben",
    "Chloe",
    "Daniel",
    "Ella",
    "Farhan",
    "Grace",
    "Harry",
    "Isla",
    "Jack",
    "Kiran",
    "Lily",
    "Mohammed",
    "Niamh",
    "Oliver",
    "Priya",
    "Rhys",
    "Sofia",
    "Tom",
    "Zara",
]
LAST = [
    "Ahmed",
    "Brown",
    "Clarke",
    "Davies",
    "Evans",
    "Green",
    "Hughes",
    "Jones",
    "Khan",
    "Lewis",
    "Morgan",
    "Patel",
    "Roberts",
    "Singh",
    "Smith",
    "Taylor",
    "Walker",
    "Wilson",
]
OUTWARD = [
    "SW1A",
    "SE1",
    "E1",
    "N1",
    "NW1",
    "W2",
    "EC1A",
    "WC2N",
    "BR1",
    "CR0",
    "DA1",
    "EN1",
    "HA1",
    "IG1",
    "KT1",
    "RM1",
    "SM1",
    "TW1",
    "UB1",
    "WD17",
]
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
TOPICS = [
    "burglary",
    "fraud",
    "e-crime",
    "missing-person",
    "anti-social-behaviour",
    "road-safety",
    "vehicle-crime",
    "community",
]
DOMAINS = ["example.com", "example.org", "example.net"]
CHANNEL_MIXES = ["sms;email", "email", "sms", "sms;email;voice", "voice", "email;voice"]


def registrant_row(i: int, rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    outward = rng.choice(OUTWARD)
    inward = f"{rng.randint(0, 9)}{rng.choice(INWARD_LETTERS)}{rng.choice(INWARD_LETTERS)}"
    channels = CHANNEL_MIXES[i % len(CHANNEL_MIXES)]
    return {
        "name": f"{first} {last}",
        "email": f"{first}.{last}.{i}@{rng.choice(DOMAINS)}".lower(),
        # 071xx xxxxxx is a valid UK mobile range; 020 3xxx xxxx a valid London landline range.
        "mobile": f"071{i:08d}",
        "landline": f"0203{i:07d}" if "voice" in channels else "",
        "postcode": f"{outward} {inward}",
        "channels": channels,
        "areas": outward,
        "topics": ";".join(rng.sample(TOPICS, k=rng.randint(1, 3))),
        "consented_at": f"2006-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "source": "Police Message Broadcast",
    }


def write_registrants_csv(path: Path, count: int, *, seed: int = 2007, start: int = 0) -> Path:
    rng = random.Random(seed)
    columns = list(registrant_row(0, random.Random(0)))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for i in range(start, start + count):
            writer.writerow(registrant_row(i, rng))
    return path
