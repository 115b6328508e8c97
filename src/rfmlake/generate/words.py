"""Small built-in word lists the generator draws from: plausible, obviously fake, no third-party faker.

Every list is a tuple so the draw order (and with it the output bytes) never depends on set ordering.
"""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "Anna", "Erik", "Lena", "Jonas", "Sofia", "Lukas", "Emma", "Noah", "Maja", "Oskar", "Clara", "Felix",
    "Ida", "Hugo", "Elsa", "Liam", "Olivia", "Leon", "Mia", "Paul", "Nora", "Jakob", "Alice", "Theo",
    "Julia", "Max", "Sara", "Adam", "Laura", "Ben", "Hanna", "Oliver", "Chloe", "James", "Amelia", "Jack",
    "Grace", "Harry", "Lucy", "Thomas", "Emily", "Daniel", "Sophie", "Samuel", "Zoe", "Marco", "Giulia",
    "Pierre", "Camille", "Lucas", "Ines", "Mateo", "Marta", "Piotr", "Zofia", "Jan", "Agnieszka", "Lars",
    "Freja", "Mads", "Astrid", "Henrik", "Karin", "Nils", "Elin", "Viktor", "Wilma", "Aron", "Selma",
)
LAST_NAMES: tuple[str, ...] = (
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson", "Svensson",
    "Mueller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Koch",
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Evans", "Walker",
    "Martin", "Bernard", "Dubois", "Durand", "Lefebvre", "Moreau", "Laurent", "Rossi", "Russo", "Ferrari",
    "De Vries", "Jansen", "Bakker", "Visser", "Nowak", "Kowalski", "Wisniewski", "Hansen", "Jensen",
    "Nielsen", "Pedersen", "Garcia", "Miller", "Davis", "Lopez", "Clark", "Lewis", "Young", "King",
)
EMAIL_DOMAINS: tuple[str, ...] = (
    "example.com", "example.net", "example.org", "mail.example.com", "post.example.se", "web.example.de",
    "inbox.example.co.uk",
)

# country -> (currency, phone prefix, utc offset hours in winter, observes summer time, cities)
COUNTRIES: dict[str, tuple[str, str, int, bool, tuple[str, ...]]] = {
    "DE": ("EUR", "+49", 1, True, ("Berlin", "Hamburg", "Munich", "Cologne", "Frankfurt", "Leipzig")),
    "SE": ("SEK", "+46", 1, True, ("Stockholm", "Gothenburg", "Malmo", "Uppsala", "Lund", "Umea")),
    "GB": ("GBP", "+44", 0, True, ("London", "Manchester", "Leeds", "Bristol", "Glasgow", "Cardiff")),
    "US": ("USD", "+1", -5, True, ("New York", "Boston", "Chicago", "Austin", "Seattle", "Atlanta")),
    "FR": ("EUR", "+33", 1, True, ("Paris", "Lyon", "Marseille", "Lille", "Nantes", "Bordeaux")),
    "NL": ("EUR", "+31", 1, True, ("Amsterdam", "Rotterdam", "Utrecht", "Eindhoven", "Groningen")),
    "DK": ("DKK", "+45", 1, True, ("Copenhagen", "Aarhus", "Odense", "Aalborg")),
    "CH": ("CHF", "+41", 1, True, ("Zurich", "Geneva", "Basel", "Bern")),
    "PL": ("PLN", "+48", 1, True, ("Warsaw", "Krakow", "Gdansk", "Wroclaw", "Poznan")),
}
# Share of customers per country (same order as COUNTRIES); a Nordic/German shop with a UK and US tail.
COUNTRY_WEIGHTS: tuple[float, ...] = (0.27, 0.22, 0.14, 0.12, 0.08, 0.07, 0.04, 0.03, 0.03)

PRODUCT_ADJECTIVES: tuple[str, ...] = (
    "Classic", "Organic", "Compact", "Deluxe", "Everyday", "Vintage", "Urban", "Nordic", "Lightweight",
    "Premium", "Eco", "Smart", "Cozy", "Rugged", "Slim", "Bright", "Soft", "Pro", "Mini", "Essential",
)
PRODUCT_NOUNS: dict[str, tuple[str, ...]] = {
    "Home": ("Lamp", "Throw Blanket", "Cushion", "Vase", "Candle Set", "Rug", "Mirror", "Shelf"),
    "Kitchen": ("Chef Knife", "Kettle", "Mug Set", "Cutting Board", "Coffee Grinder", "Pan", "Teapot"),
    "Apparel": ("Hoodie", "Rain Jacket", "Wool Socks", "T-Shirt", "Beanie", "Scarf", "Sneakers", "Jeans"),
    "Outdoor": ("Backpack", "Water Bottle", "Tent", "Headlamp", "Sleeping Bag", "Camping Stove"),
    "Electronics": ("Headphones", "Charger", "Speaker", "Smartwatch", "Power Bank", "Keyboard", "Mouse"),
    "Beauty": ("Face Cream", "Shampoo", "Lip Balm", "Hand Soap", "Body Lotion", "Perfume"),
    "Toys": ("Puzzle", "Building Blocks", "Plush Bear", "Board Game", "Kite", "Train Set"),
}
BRANDS: tuple[str, ...] = (
    "Fjord", "Aurora", "Linden", "Kestrel", "Birchwood", "Northwind", "Solvik", "Maple & Co", "Granite",
    "Halcyon", "Tundra", "Willow", "Cobalt", "Ember",
)

USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
    "Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:129.0) Gecko/20100101 Firefox/129.0",
    "ShopApp/4.12.0 (iOS 17.5; iPhone15,2)",
)
REFERRERS: tuple[str, ...] = (
    "", "", "https://www.google.com/", "https://www.bing.com/", "https://newsletter.example.com/weekly",
    "https://www.facebook.com/", "https://www.instagram.com/",
)
LOG_PATHS: tuple[str, ...] = (
    "/", "/cart", "/checkout", "/search?q=jacket", "/search?q=lamp", "/account", "/static/app.js",
    "/static/style.css", "/favicon.ico", "/api/recommendations", "/robots.txt",
)

# (City, State, Country) in the shape the AWS RFM guidance sample data uses.
GUIDANCE_PLACES: tuple[tuple[str, str, str], ...] = (
    ("Seattle", "WA", "US"), ("Austin", "TX", "US"), ("Denver", "CO", "US"), ("Miami", "FL", "US"),
    ("Bengaluru", "KA", "IN"), ("Mumbai", "MH", "IN"), ("Toronto", "ON", "CA"), ("Sydney", "NSW", "AU"),
)
GUIDANCE_OFFSETS: tuple[int, ...] = (-420, -360, -300, 330, 330, -300, 600, 0)  # minutes, per place
