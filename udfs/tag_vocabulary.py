"""Tag vocabulary: the words mining skips, and the merge with the user's tags (pure).

Method (the paper's mining is unpublished): lowercase alphabetic tokens of length >= 3
from kept sentences, weighted by how often each sentence occurs, minus English function
words and common verbs' auxiliaries; the most frequent `size` words (jobs/lib/tag_mining.py,
Spark SQL), merged with an optional user list (user tags first).
"""
from __future__ import annotations

STOPWORDS = set("""
a about above after again against all also am an and any are aren as at be because been before being
below between both but by can cannot could did do does doing down during each few for from further had
has have having he her here hers herself him himself his how i if in into is it its itself just let me
more most my myself no nor not now of off on once only or other ought our ours ourselves out over own
same she should so some such than that the their theirs them themselves then there these they this
those through to too under until up very was we were what when where which while who whom why will
with would you your yours yourself yourselves one two three many much every get got make made today
""".split())


def merge_user_tags(mined: list[str], user: list[str], size: int) -> list[str]:
    out, seen = [], set()
    for t in [u.strip().lower() for u in user] + mined:
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return out[:max(size, len(user))]
