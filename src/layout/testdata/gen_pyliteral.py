"""Regenerates pyliteral_cases.tsv with CPython (3.11): `source<TAB>repr(ast.literal_eval(source))`.

Run: /opt/bt/venv/bin/python src/layout/testdata/gen_pyliteral.py > src/layout/testdata/pyliteral_cases.tsv
"""
import ast
import random
import struct

random.seed(20261127)
cases = []


def add(src):
    value = ast.literal_eval(src)
    cases.append((src, repr(value)))


# Hand-picked literals: quoting, escapes, numbers, containers.
for src in [
    "None", "True", "False", "0", "-0", "+7", "1_000", "0x1F", "0o17", "0b101", "00",
    "-9223372036854775808", "9223372036854775807",
    "2.0", "1e-05", "1.5e+16", "1e16", "1e15", "0.0001", "0.00001", "-0.0", "0.1", "1.", ".5",
    "5e-324", "1.7976931348623157e308", "0.30000000000000004", "123456789012345678.0",
    "9999999999999998.0", "1E5", "-(1.5)", "- 3",
    "''", '""', "'a'", '"it\'s"', "'it\\'s'", "'say \"hi\"'", "'both \\' and \"'",
    "'tab\\there'", "'nl\\nline'", "'cr\\r'", "'bs\\\\'", "'\\x00\\x1f\\x7f'", "'\\a\\b\\f\\v'",
    "'\\x80\\x9f\\xa0\\xad\\xe9'", "'\\u0378\\u200b\\u2028\\u3000\\ufeff\\ue000'",
    "'\\U0001f600\\U000e0001\\U0010ffff\\U00030000'", "'caf\\xe9 \\u00fc\\u4e2d'",
    "'\\777'", "'\\d'", "r'\\d\\n'", "u'x'", "'a' \"b\"", "'''tri'ple'''",
    "[]", "()", "{}", "(1,)", "(1, 2)", "[1, (2,), [3]]", "(1)", "((1,),)", "1, 2",
    "{'a': 1, 'b': [1.5, None]}", "{1: 'a', True: 'b', 1.0: 'c'}", "{(1, 'x'): {}}",
    "[('ts1', 16384, '/var/lib/postgresql/tablespaces/ts1')]",
    "{'total_time': 2.874594, 'number_of_workers': 2, 'analysis_time': 0, 'analysis_time_per_item': {'16384': 0, 'data': 0}, 'copy_time_per_item': {'16384': 2.158129, 'data': 1.789187}, 'serialized_copy_time_per_item': {'16384': 0.663337, 'data': 0.751054}, 'copy_time': 2.209464, 'serialized_copy_time': 2.035278}",
    "'START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\\nCHECKPOINT LOCATION: 0/4000060\\nBACKUP METHOD: streamed\\n'",
    "[ 1 ,\x0c2 , ] # comment",
]:
    add(src)

# Random doubles from random bit patterns, written with 17 significant digits.
for _ in range(400):
    (f,) = struct.unpack("<d", struct.pack("<Q", random.getrandbits(64)))
    if f != f or f in (float("inf"), float("-inf")):
        continue
    add("%.17g" % f)
for _ in range(200):
    f = random.uniform(-1e6, 1e6) * 10 ** random.randint(-30, 30)
    add("%.17g" % f)
for _ in range(100):
    add(repr(round(random.uniform(0, 100), random.randint(0, 6))))

# Random strings over interesting code point ranges, given as ascii() escapes.
pools = [
    (0x00, 0x7F), (0x80, 0x2FF), (0x300, 0x3FF), (0x2000, 0x206F), (0xD7F0, 0xD7FF),
    (0xE000, 0xE00F), (0xFDD0, 0xFDEF), (0xFFF0, 0xFFFF), (0x1F000, 0x1F6FF),
    (0xE0000, 0xE01EF), (0x10FFF0, 0x10FFFF), (0x30000, 0x3134F), (0x31350, 0x323AF),
]
for _ in range(300):
    chars = []
    for _ in range(random.randint(0, 12)):
        lo, hi = random.choice(pools)
        c = random.randint(lo, hi)
        if 0xD800 <= c <= 0xDFFF:
            continue
        chars.append(chr(c))
    chars += random.choice([[], ["'"], ['"'], ["'", '"']])
    random.shuffle(chars)
    add(ascii("".join(chars)))

for src, expected in cases:
    assert "\t" not in src and "\n" not in src, src
    assert "\t" not in expected and "\n" not in expected, expected
    print("%s\t%s" % (src, expected))
