"""A realistic sample crawl, generated: the input of `lakesift demo` and of the end-to-end tests.

Writes one gzip-per-record WARC/1.1 file shaped like a Common Crawl segment (warcinfo with isPartOf,
then request/response/metadata triples) holding, in proportions set by SampleCrawlSpec:
articles in English, German, French and Spanish; boilerplate-heavy pages (menus, cookie banners, a
sentence of content); keyword spam; exact duplicates (same HTML at another URL); near duplicates
(an article with a few words changed, a sentence added or a paragraph dropped); very short pages;
pages whose declared charset is wrong or missing; non-HTML responses (PDF, JPEG, JSON, CSS); a
dns: response; and one corrupt record (garbage bytes where a gzip member should start).
Everything is derived from the seed: the same spec writes the same bytes.
"""
from __future__ import annotations

import gzip
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

TOPICS = {
    "gardening": (["tomatoes", "roses", "compost", "raised beds", "seedlings", "mulch", "fruit trees", "herbs"],
                  ["water", "prune", "plant", "harvest", "feed", "protect", "divide", "transplant"]),
    "cooking": (["bread dough", "a risotto", "stock", "pastry", "a curry", "fresh pasta", "pickles", "a stew"],
                ["knead", "simmer", "season", "roast", "rest", "whisk", "bake", "reduce"]),
    "astronomy": (["Jupiter", "the Moon", "a comet", "the Andromeda galaxy", "Saturn's rings", "a meteor shower",
                   "the Orion nebula", "binary stars"], ["observe", "photograph", "track", "measure", "study",
                                                         "sketch", "locate", "identify"]),
    "history": (["the printing press", "medieval trade routes", "the steam engine", "ancient libraries",
                 "the telegraph", "early maps", "Roman roads", "city charters"],
                ["shape", "transform", "connect", "document", "preserve", "spread", "reorganise", "reveal"]),
    "cycling": (["a touring bike", "disc brakes", "a chain", "tubeless tyres", "a long climb", "panniers",
                 "a gravel route", "a headwind"], ["maintain", "adjust", "clean", "climb", "pack", "plan",
                                                  "replace", "ride"]),
    "software": (["a database index", "unit tests", "a build pipeline", "memory leaks", "an API", "log files",
                  "a cache", "version control"], ["design", "profile", "debug", "document", "refactor",
                                                  "deploy", "monitor", "review"]),
}
SENTENCES_EN = (
    "Many readers ask how to {verb} {thing} without spending a whole weekend on it.",
    "The short answer is that {thing} rewards patience more than expensive equipment.",
    "In our experience, the best time to {verb} {thing} is early in the morning, before the day gets busy.",
    "A common mistake is to {verb} {thing} too often, which does more harm than good.",
    "If you {verb} {thing} carefully, the results improve noticeably within a few weeks.",
    "Experts disagree about how much attention {thing} really needs, but most agree on the basics.",
    "We tested three different approaches and kept notes on what worked and what did not.",
    "The first approach was simple: {verb} {thing} once, then wait and watch closely.",
    "The second approach took longer, because we had to {verb} {other} at the same time.",
    "Surprisingly, the slowest method gave the most reliable results over the whole season.",
    "Keep a notebook, because small details are easy to forget after a month.",
    "Beginners often underestimate how much {other} influences {thing}.",
    "There is no single rule that fits every situation, so adapt the advice to your own conditions.",
    "Once you understand why {thing} behaves the way it does, the rest becomes much easier.",
    "Local clubs and libraries are good places to learn from people who have done this for years.",
    "It helps to {verb} {other} first, since everything else depends on it.",
    "The numbers tell a clear story: careful preparation saves time later.",
    "Several readers wrote to us about their own experiments, and their findings matched ours.",
    "Do not be discouraged by early failures; they are part of learning how to {verb} {thing}.",
    "A good guide explains not only what to do but also why it works.",
    "Our neighbour swears by a method her grandfather used, and it turned out to be surprisingly sound.",
    "Cheap tools are fine at the start; upgrade only when you know exactly what limits you.",
    "Weather matters more than most manuals admit, so check the forecast before you {verb} {thing}.",
    "Write down the date, the conditions and what you changed, then compare the results next month.",
    "If something goes wrong, undo the last change first instead of trying three fixes at once.",
    "A second opinion from someone experienced can save a lot of frustration with {thing}.",
    "Most of the work is preparation; the part everybody photographs takes only a few minutes.",
    "We were wrong about {other} at first, and admitting it improved everything that followed.",
    "Safety comes first: read the instructions twice and keep children and pets at a distance.",
    "The internet is full of contradictory advice, so test claims yourself on a small scale.",
    "After a year of practice the routine felt natural, and the results became predictable.",
    "Friends who tried the same approach reported similar outcomes, which was reassuring.",
    "Costs add up quickly, so keep receipts and decide in advance how much you are willing to spend.",
    "The most useful skill turned out to be patience, followed closely by careful observation.",
    "When in doubt, do less: it is easier to add another step later than to undo a mistake.",
    "Libraries often lend specialist books that are too expensive to buy for a single project.",
    "Small improvements compound, and after a few months the difference in {thing} was obvious.",
    "Take photographs along the way; memory is a poor record of gradual change.",
    "Local conditions vary, so treat every number in this article as a starting point, not a rule.",
    "We will return to {thing} in a later article, once we have results from a full season.",
)
SENTENCES = {
    "de": ("Viele Leser fragen, wie man am besten anfängt, ohne viel Geld auszugeben.",
           "Die kurze Antwort lautet, dass Geduld wichtiger ist als teure Ausrüstung.",
           "Wir haben drei verschiedene Methoden ausprobiert und alles genau notiert.",
           "Ein häufiger Fehler ist es, zu viel auf einmal zu wollen.",
           "Im Frühjahr sind die Bedingungen meistens am günstigsten für einen Neuanfang.",
           "Erfahrene Mitglieder des Vereins helfen gerne weiter, wenn man freundlich fragt.",
           "Die Ergebnisse waren überraschend deutlich und haben uns alle überzeugt.",
           "Man sollte sich Zeit nehmen und die Grundlagen gründlich verstehen.",
           "Kleine Veränderungen können auf lange Sicht eine große Wirkung haben.",
           "Am Ende zählt vor allem, dass man regelmäßig dranbleibt."),
    "fr": ("Beaucoup de lecteurs nous demandent comment commencer sans dépenser trop d'argent.",
           "La réponse courte est que la patience compte plus que le matériel.",
           "Nous avons essayé trois méthodes différentes et noté chaque résultat.",
           "Une erreur fréquente consiste à vouloir aller trop vite au début.",
           "Le printemps reste la meilleure saison pour se lancer dans ce projet.",
           "Les membres expérimentés du club partagent volontiers leurs conseils.",
           "Les résultats ont été plus nets que ce que nous avions imaginé.",
           "Il faut prendre le temps de bien comprendre les bases avant d'aller plus loin.",
           "De petits changements peuvent avoir un grand effet sur la durée.",
           "Au bout du compte, la régularité fait toute la différence."),
    "es": ("Muchos lectores nos preguntan cómo empezar sin gastar demasiado dinero.",
           "La respuesta corta es que la paciencia importa más que el equipo caro.",
           "Probamos tres métodos distintos y anotamos cada resultado con cuidado.",
           "Un error frecuente es querer avanzar demasiado rápido al principio.",
           "La primavera suele ser la mejor época para comenzar un proyecto así.",
           "Los miembros con experiencia del club comparten sus consejos con gusto.",
           "Los resultados fueron más claros de lo que esperábamos.",
           "Conviene tomarse el tiempo de entender bien los fundamentos.",
           "Los pequeños cambios pueden tener un gran efecto a largo plazo.",
           "Al final, lo que más cuenta es la constancia."),
}
REFERENCE_SENTENCES = (
    "The study of {thing} has a long history, and its methods have changed considerably over the last century.",
    "Scholars usually distinguish several approaches to {thing}, each resting on different assumptions about {other}.",
    "Early accounts of {thing} were largely descriptive; systematic measurement came later, with better instruments.",
    "A central question concerns how {thing} responds when {other} changes, which experiments have addressed directly.",
    "The evidence suggests that {thing} depends on several interacting factors rather than on a single cause.",
    "Several reference works summarise the field, and their definitions of {thing} differ in important details.",
    "Critics have argued that the standard account of {thing} underestimates the role of {other}.",
    "Later research refined these ideas, showing that the effect of {other} on {thing} varies with local conditions.",
    "In practice, specialists combine observation of {thing} with careful records kept over many seasons.",
    "The terminology is not uniform: what one tradition calls {thing} another describes in terms of {other}.",
    "Historical sources indicate that interest in {thing} grew steadily once {other} became widely available.",
    "Modern textbooks present {thing} as a well understood topic, although open questions remain.",
)
SPAM_PRODUCTS = ("cheap watches", "replica bags", "casino bonus", "diet pills", "crypto signals", "free followers")
NAV = ("Home", "News", "About us", "Contact", "Shop", "Blog", "Events", "Login", "Register", "Imprint", "Privacy")
HOST_WORDS = ("green", "daily", "open", "north", "little", "bright", "urban", "river", "stone", "maple", "quiet")
TLDS = ("com", "org", "net", "de", "fr", "es", "co.uk", "info")


@dataclass(frozen=True)
class SampleCrawlSpec:
    pages: int = 400                   # HTML pages, duplicates included
    seed: int = 7
    crawl: str = "DEMO-2026-01"
    mix: dict[str, float] = field(default_factory=lambda: {
        "article_en": 0.40, "article_de": 0.06, "article_fr": 0.05, "article_es": 0.04,
        "boilerplate": 0.12, "spam": 0.09, "exact_dup": 0.08, "near_dup": 0.10, "short": 0.03,
        "charset_trap": 0.03,
    })
    non_html: int = 12
    corrupt_records: int = 1
    quoted_evals: int = 0              # English articles that quote an item of sample_eval_items (contamination)

    def __post_init__(self) -> None:
        if self.pages < 10:
            raise ValueError("a sample crawl needs at least 10 pages")
        if abs(sum(self.mix.values()) - 1.0) > 1e-6:
            raise ValueError("mix fractions must sum to 1")


class _Gen:
    def __init__(self, spec: SampleCrawlSpec):
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.clock = datetime(2026, 1, 12, 8, 0, 0, tzinfo=timezone.utc)
        self.hosts = [f"www.{self.rng.choice(HOST_WORDS)}{self.rng.choice(HOST_WORDS)}{i}.{self.rng.choice(TLDS)}"
                      for i in range(max(8, spec.pages // 6))]

    def uuid(self) -> str:
        return f"urn:uuid:{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=self.rng.randint(1, 40))
        return self.clock

    def url(self, slug: str) -> str:
        return f"https://{self.rng.choice(self.hosts)}/{slug}-{self.rng.randint(1000, 99999)}"

    # ------------------------------------------------------------------ text
    def english_paragraphs(self, topic: str) -> list[str]:
        """3-6 paragraphs of 3-5 sentences; each template at most once, as a writer would not repeat
        sentences (Gopher's repetition rules would rightly flag an article that did)."""
        things, verbs = TOPICS[topic]
        templates = self.rng.sample(SENTENCES_EN, len(SENTENCES_EN))
        paragraphs = []
        for _ in range(self.rng.randint(3, 6)):
            out = []
            for _ in range(self.rng.randint(3, 5)):
                if not templates:
                    break
                thing, other = self.rng.sample(things, 2)
                out.append(templates.pop().format(thing=thing, other=other, verb=self.rng.choice(verbs)))
            if out:
                paragraphs.append(" ".join(out))
        return paragraphs

    def article(self, lang: str) -> tuple[str, list[str]]:
        topic = self.rng.choice(sorted(TOPICS))
        things, verbs = TOPICS[topic]
        if lang == "en":
            title = f"How to {self.rng.choice(verbs)} {self.rng.choice(things)}: notes from a {topic} season"
            paras = self.english_paragraphs(topic)
        else:
            bank = SENTENCES[lang]
            title = " ".join(self.rng.sample(bank, 1)[0].split()[:6]).rstrip(",.")
            paras = [" ".join(self.rng.sample(bank, self.rng.randint(3, 5))) for _ in range(self.rng.randint(4, 7))]
        return title, paras

    # ------------------------------------------------------------------ pages
    def page(self, title: str, paras: list[str], lang: str = "en", charset: str = "utf-8",
             chrome: int = 1) -> str:
        nav = "".join(f"<li><a href='/{n.lower().replace(' ', '-')}'>{n}</a></li>" for n in NAV[: 4 + 2 * chrome])
        related = "".join(f"<li><a href='/r{i}'>Read also: {self.rng.choice(list(TOPICS))} tips #{i}</a></li>"
                          for i in range(3 * chrome))
        body = "".join(f"<p>{p}</p>" for p in paras)
        cookie = ("<div class='cookie-banner'>We use cookies to improve your experience. "
                  "<button>Accept</button></div>") if chrome > 1 else ""
        return (f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='{charset}'><title>{title}</title></head>"
                f"<body>{cookie}<header><nav><ul>{nav}</ul></nav></header><main><article><h1>{title}</h1>"
                f"{body}</article></main><aside><h3>Related</h3><ul>{related}</ul></aside>"
                f"<footer><p>© 2026 {self.rng.choice(HOST_WORDS).title()} Media</p><a href='/privacy'>Privacy policy</a>"
                f"</footer></body></html>")

    def boilerplate_page(self) -> tuple[str, str]:
        topic = self.rng.choice(sorted(TOPICS))
        title = f"{topic.title()} | Home"
        menus = "".join(f"<ul>{''.join(f'<li><a href=/{i}>{n}</a></li>' for i, n in enumerate(NAV))}</ul>"
                        for _ in range(3))
        line = self.rng.choice(SENTENCES_EN).format(thing=TOPICS[topic][0][0], other=TOPICS[topic][0][1],
                                                    verb=TOPICS[topic][1][0])
        html = (f"<html><head><title>{title}</title></head><body>"
                f"<div class='cookie'>This site uses cookies. By continuing you accept our cookie policy.</div>"
                f"<nav>{menus}</nav><div class='content'><p>{line}</p></div>"
                f"<div class='newsletter'>Subscribe to our newsletter! Enter your e-mail address.</div>"
                f"<footer>{menus}<p>Terms of use | Privacy policy | Imprint</p></footer></body></html>")
        return title, html

    def spam_page(self) -> tuple[str, str]:
        product = self.rng.choice(SPAM_PRODUCTS)
        title = f"BEST {product.upper()} !!! CHEAP {product.upper()} ONLINE"
        lines = [f"buy {product} cheap {product} best {product} price {product} online now" for _ in range(8)]
        lines += [f"<a href='http://{product.replace(' ', '')}{i}.xxx/'>{product} {i}</a>" for i in range(20)]
        html = (f"<html><head><title>{title}</title><meta name='keywords' content='{product}, {product}'></head><body>"
                + "<br>".join(lines) + f"<p>CLICK HERE!!! {product} {product} {product} ### $$$ ...</p></body></html>")
        return title, html


def _http_response(body: bytes, content_type: str) -> bytes:
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Server: sample\r\n\r\n").encode("ascii")
    return head + body


def warc_record(record_type: str, record_id: str, date: datetime, block: bytes, target_uri: str | None = None,
                content_type: str = "application/http; msgtype=response", extra: dict[str, str] | None = None) -> bytes:
    """One WARC/1.1 record (uncompressed): header block, content block, CRLF CRLF."""
    headers = {"WARC-Type": record_type, "WARC-Record-ID": f"<{record_id}>",
               "WARC-Date": date.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if target_uri:
        headers["WARC-Target-URI"] = target_uri
    headers.update(extra or {})
    headers["Content-Type"] = content_type
    headers["Content-Length"] = str(len(block))
    head = "WARC/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("utf-8") + block + b"\r\n\r\n"


def write_sample_crawl(path: str | Path, spec: SampleCrawlSpec = SampleCrawlSpec()) -> dict[str, int]:
    """Write the sample crawl to `path` (gzip per record); returns how many records of each kind it holds."""
    gen = _Gen(spec)
    rng = gen.rng
    kinds = [k for k, frac in spec.mix.items() for _ in range(round(frac * spec.pages))]
    kinds = (kinds + ["article_en"] * spec.pages)[: spec.pages]
    rng.shuffle(kinds)
    corrupt_at = {rng.randrange(spec.pages) for _ in range(spec.corrupt_records)}
    counts: dict[str, int] = {}
    articles: list[tuple[str, str, list[str]]] = []      # (html, title, paras) to copy from
    eval_items, quoted = sample_eval_items(spec.seed), 0
    members: list[bytes] = []

    info = (f"software: lakesift sample_crawl\r\nformat: WARC File Format 1.1\r\nisPartOf: {spec.crawl}\r\n"
            f"description: generated sample crawl, seed {spec.seed}\r\n").encode()
    members.append(gzip.compress(warc_record("warcinfo", gen.uuid(), gen.tick(), info, content_type="application/warc-fields"), mtime=0))

    def add_response(url: str, body: bytes, content_type: str) -> None:
        date = gen.tick()
        response_id = gen.uuid()
        request = f"GET /{url.split('/', 3)[-1]} HTTP/1.1\r\nHost: {url.split('/')[2]}\r\nUser-Agent: lakesift-sample\r\n\r\n"
        members.append(gzip.compress(warc_record("request", gen.uuid(), date, request.encode(), url,
                                                 "application/http; msgtype=request"), mtime=0))
        members.append(gzip.compress(warc_record("response", response_id, date, _http_response(body, content_type), url,
                                                 extra={"WARC-Concurrent-To": f"<{gen.uuid()}>"}), mtime=0))
        members.append(gzip.compress(warc_record("metadata", gen.uuid(), date, b"fetchTimeMs: 120\r\n", url,
                                                 "application/warc-fields", {"WARC-Refers-To": f"<{response_id}>"}), mtime=0))

    for i, kind in enumerate(kinds):
        if i in corrupt_at:
            members.append(b"\x00CORRUPT\xff" * 16)          # bytes where a record should start
            counts["corrupt"] = counts.get("corrupt", 0) + 1
        if kind in ("exact_dup", "near_dup") and not articles:
            kind = "article_en"
        content_type = "text/html; charset=utf-8"
        if kind.startswith("article_"):
            lang = kind.split("_")[1]
            title, paras = gen.article(lang)
            if lang == "en" and quoted < spec.quoted_evals:
                item = eval_items[quoted % len(eval_items)]
                paras = paras + [f"A reader quiz we liked: {item['query']} {item['choices'][item['gold']]}"]
                quoted += 1
            html = gen.page(title, paras, lang, chrome=rng.randint(1, 2))
            if lang == "en":
                articles.append((html, title, paras))
        elif kind == "boilerplate":
            _, html = gen.boilerplate_page()
        elif kind == "spam":
            _, html = gen.spam_page()
        elif kind == "exact_dup":
            html = rng.choice(articles)[0]
        elif kind == "near_dup":
            _, title, paras = rng.choice(articles)
            html = gen.page(title, _near_duplicate(rng, paras), "en", chrome=1)
        elif kind == "short":
            html = f"<html><head><title>Untitled</title></head><body><p>{rng.choice(SENTENCES['de'])}</p></body></html>"
        else:   # charset_trap: Latin-1 bytes, declared utf-8 in HTTP, honest <meta> or none at all
            title, paras = gen.article(rng.choice(("de", "fr", "es")))
            html = gen.page(title, paras, "de", charset="iso-8859-1")
            if rng.random() < 0.5:
                html = html.replace("<meta charset='iso-8859-1'>", "")
            add_response(gen.url("seite"), html.encode("latin-1", "replace"),
                         "text/html; charset=utf-8" if rng.random() < 0.5 else "text/html")
            counts[kind] = counts.get(kind, 0) + 1
            continue
        add_response(gen.url(kind.split("_")[0]), html.encode("utf-8"), content_type)
        counts[kind] = counts.get(kind, 0) + 1

    for j in range(spec.non_html):
        kind, ctype, body = [
            ("pdf", "application/pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog>>endobj\n" + rng.randbytes(600)),
            ("jpeg", "image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + rng.randbytes(900)),
            ("json", "application/json", b'{"items": [1, 2, 3], "ok": true}'),
            ("css", "text/css", b"body { margin: 0; font-family: sans-serif; }"),
        ][j % 4]
        add_response(gen.url(kind), body, ctype)
        counts["non_html"] = counts.get("non_html", 0) + 1
    dns = b"20260112080000\nwww.example.org.\t300\tIN\tA\t93.184.216.34\n"
    members.append(gzip.compress(warc_record("response", gen.uuid(), gen.tick(), dns, "dns:www.example.org", "text/dns"), mtime=0))
    counts["dns"] = 1

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        for m in members:
            fh.write(m)
    tmp.replace(path)
    counts["html"] = sum(v for k, v in counts.items() if k not in ("non_html", "dns", "corrupt"))
    return counts


def write_reference_text(path: str | Path, paragraphs: int = 600, seed: int = 11) -> int:
    """Encyclopedic prose, one paragraph per blank-line-separated block: the demo's reference-quality
    positives for `train-quality` (a real run uses Wikipedia, books or other curated text)."""
    rng = random.Random(seed)
    blocks = []
    for _ in range(paragraphs):
        topic = rng.choice(sorted(TOPICS))
        things = TOPICS[topic][0]
        sentences = []
        for _ in range(rng.randint(4, 7)):
            thing, other = rng.sample(things, 2)
            sentences.append(rng.choice(REFERENCE_SENTENCES).format(thing=thing, other=other))
        blocks.append(" ".join(sentences))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return len(blocks)


def _near_duplicate(rng: random.Random, paras: list[str]) -> list[str]:
    """An edited copy: a few words replaced, a sentence added, or the last paragraph dropped."""
    edit = rng.choice(("words", "append", "drop"))
    paras = list(paras)
    if edit == "words":
        words = " ".join(paras).split(" ")
        for _ in range(max(1, len(words) // 40)):
            words[rng.randrange(len(words))] = rng.choice(("really", "quite", "often", "maybe", "indeed"))
        joined = " ".join(words)
        cut = len(joined) // 2
        return [joined[:cut], joined[cut:]]
    if edit == "append":
        paras[-1] += " Update: several readers sent us photos of their results, which we will share soon."
        return paras
    return paras[:-1] if len(paras) > 3 else paras


EVAL_QUESTIONS = (
    "Question: When the notes say it is best to {verb} {thing} early in the morning, which reason do experienced "
    "readers give for doing so?",
    "Question: According to the season notes, what happens when people {verb} {thing} far too often and without "
    "any plan at all?",
    "Question: Which of these would a careful reader most likely {verb} first when starting out with {thing} "
    "on a small budget?",
)


def sample_eval_items(seed: int, n: int = 40) -> list[dict]:
    """Multiple-choice items about the sample crawl's topics, in the evaluation sets' JSONL shape
    (query, choices, gold): the demo's evaluation set. Drawn from their own generator, so quoting them in
    a crawl does not change the crawl's other pages."""
    rng = random.Random(seed * 7919 + 13)
    items = []
    for _ in range(n):
        topic = rng.choice(sorted(TOPICS))
        things, verbs = TOPICS[topic]
        thing, other = rng.sample(things, 2)
        question = rng.choice(EVAL_QUESTIONS).format(verb=rng.choice(verbs), thing=thing)
        choices = [f"{thing} needs less work.", f"{other} needs more care."]     # two choices, as copa has
        rng.shuffle(choices)
        items.append({"query": question, "choices": choices, "gold": choices.index(f"{thing} needs less work.")})
    return items


def write_sample_evals(folder: str | Path, seed: int) -> Path:
    """The demo's evaluation set as <folder>/copa.jsonl (a multiple-choice task the proxy evaluation knows)."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "copa.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in sample_eval_items(seed)), encoding="utf-8")
    return folder
