"""Small embedded vocabularies for the synthetic generator (no download at run time)."""
from __future__ import annotations

FIRST_NAMES_F = [
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah",
    "Karen", "Lisa", "Nancy", "Betty", "Margaret", "Sandra", "Ashley", "Kimberly", "Emily", "Donna",
    "Michelle", "Carol", "Amanda", "Dorothy", "Melissa", "Deborah", "Stephanie", "Rebecca", "Sharon",
    "Laura", "Cynthia", "Kathleen", "Amy", "Angela", "Shirley", "Anna", "Brenda", "Pamela", "Emma",
    "Nicole", "Helen", "Samantha", "Katherine", "Christine", "Debra", "Rachel", "Carolyn", "Janet",
    "Catherine", "Maria", "Heather", "Diane", "Ruth", "Julie", "Olivia", "Joyce", "Virginia",
    "Victoria", "Kelly", "Lauren", "Christina", "Joan", "Evelyn", "Judith", "Megan", "Andrea",
    "Cheryl", "Hannah", "Jacqueline", "Martha", "Gloria", "Teresa", "Ann", "Sara", "Madison",
    "Frances", "Kathryn", "Janice", "Jean", "Abigail", "Alice", "Julia", "Judy", "Sophia", "Grace",
    "Denise", "Amber", "Doris", "Marilyn", "Danielle", "Beverly", "Isabella", "Theresa", "Diana",
    "Natalie", "Brittany", "Charlotte", "Marie", "Kayla", "Alexis", "Lori", "Chloe", "Zoe", "Mia",
]
FIRST_NAMES_M = [
    "James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas",
    "Charles", "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven", "Paul",
    "Andrew", "Joshua", "Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald", "Edward",
    "Jason", "Jeffrey", "Ryan", "Jacob", "Gary", "Nicholas", "Eric", "Jonathan", "Stephen", "Larry",
    "Justin", "Scott", "Brandon", "Benjamin", "Samuel", "Gregory", "Alexander", "Frank", "Patrick",
    "Raymond", "Jack", "Dennis", "Jerry", "Tyler", "Aaron", "Jose", "Adam", "Nathan", "Henry",
    "Douglas", "Zachary", "Peter", "Kyle", "Ethan", "Walter", "Noah", "Jeremy", "Christian",
    "Keith", "Roger", "Terry", "Gerald", "Harold", "Sean", "Austin", "Carl", "Arthur", "Lawrence",
    "Dylan", "Jesse", "Jordan", "Bryan", "Billy", "Joe", "Bruce", "Gabriel", "Logan", "Albert",
    "Willie", "Alan", "Juan", "Wayne", "Elijah", "Randy", "Roy", "Vincent", "Ralph", "Eugene",
    "Russell", "Bobby", "Mason", "Philip", "Louis", "Liam", "Lucas", "Owen", "Caleb", "Isaac",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres",
    "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell",
    "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz", "Parker",
    "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy", "Cook",
    "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson", "Bailey", "Reed", "Kelly",
    "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks", "Chavez", "Wood",
    "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez", "Castillo",
    "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez", "Powell", "Jenkins", "Perry",
    "Russell", "Sullivan", "Bell", "Coleman", "Butler", "Henderson", "Barnes", "Gonzales", "Fisher",
    "Vasquez", "Simmons", "Romero", "Jordan", "Patterson", "Alexander", "Hamilton", "Graham",
    "Reynolds", "Griffin", "Wallace", "Moreno", "West", "Cole", "Hayes", "Bryant", "Herrera",
    "Gibson", "Ellis", "Tran", "Medina", "Aguilar", "Stevens", "Murray", "Ford", "Castro",
    "Marshall", "Owens", "Harrison", "Fernandez", "McDonald", "Woods", "Washington", "Kennedy",
    "Wells", "Vargas", "Henry", "Chen", "Freeman", "Webb", "Tucker", "Guzman", "Burns", "Crawford",
    "Olson", "Simpson", "Porter", "Hunter", "Gordon", "Mendez", "Silva", "Shaw", "Snyder", "Mason",
    "Dixon", "Munoz", "Hunt", "Hicks", "Holmes", "Palmer", "Wagner", "Black", "Robertson", "Boyd",
    "Rose", "Stone", "Salazar", "Fox", "Warren", "Mills", "Meyer", "Rice", "Schmidt", "Garza",
    "Daniels", "Ferguson", "Nichols", "Stephens", "Soto", "Weaver", "Ryan", "Gardner", "Payne",
    "Grant", "Dunn", "Kelley", "Spencer", "Hawkins", "Arnold", "Pierce", "Vazquez", "Hansen",
    "Peters", "Santos", "Hart", "Bradley", "Knight", "Elliott", "Cunningham", "Duncan", "Armstrong",
    "Hudson", "Carroll", "Lane", "Riley", "Andrews", "Alvarado", "Ray", "Delgado", "Berry",
    "Perkins", "Hoffman", "Johnston", "Matthews", "Pena", "Richards", "Contreras", "Willis",
    "Carpenter", "Lawrence", "Sandoval", "O'Brien", "Guerrero", "George", "Chapman", "Rios",
]
EMAIL_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com",
                 "proton.me", "mail.com", "comcast.net", "example.org"]
STREETS = ["Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park",
           "Sunset", "Lincoln", "Jackson", "Church", "River", "Highland", "Walnut", "Spring",
           "Forest", "Ridge", "Meadow", "Chestnut", "Willow", "Franklin", "Cherry", "Center"]
STREET_TYPES = ["St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct", "Way", "Pl", "Ter"]
# (city, state, ZIP prefix): ZIPs starting with 0 test zero-padding of postcodes.
CITIES = [
    ("New York", "NY", "100"), ("Los Angeles", "CA", "900"), ("Chicago", "IL", "606"),
    ("Houston", "TX", "770"), ("Phoenix", "AZ", "850"), ("Philadelphia", "PA", "191"),
    ("San Antonio", "TX", "782"), ("San Diego", "CA", "921"), ("Dallas", "TX", "752"),
    ("Austin", "TX", "787"), ("Boston", "MA", "021"), ("Seattle", "WA", "981"),
    ("Denver", "CO", "802"), ("Portland", "OR", "972"), ("Atlanta", "GA", "303"),
    ("Miami", "FL", "331"), ("Newark", "NJ", "071"), ("Hartford", "CT", "061"),
    ("Minneapolis", "MN", "554"), ("Detroit", "MI", "482"), ("Nashville", "TN", "372"),
    ("Columbus", "OH", "432"), ("Charlotte", "NC", "282"), ("Providence", "RI", "029"),
]
AREA_CODES = ["212", "310", "312", "713", "602", "215", "210", "619", "214", "512", "617", "206",
              "303", "503", "404", "305", "973", "860", "612", "313", "615", "614", "704", "401"]
CATEGORIES = {
    "Apparel": ["Tops", "Dresses", "Jeans", "Outerwear", "Activewear"],
    "Footwear": ["Sneakers", "Boots", "Sandals", "Formal Shoes"],
    "Beauty": ["Skincare", "Makeup", "Fragrance", "Haircare"],
    "Home": ["Bedding", "Kitchen", "Decor", "Bath"],
    "Electronics": ["Audio", "Phones", "Accessories", "Wearables"],
    "Grocery": ["Snacks", "Beverages", "Pantry", "Coffee"],
    "Sports": ["Fitness", "Outdoor", "Cycling", "Yoga"],
    "Toys": ["Games", "Puzzles", "Outdoor Play", "Plush"],
    "Books": ["Fiction", "Cooking", "Children", "Travel"],
    "Pets": ["Dog", "Cat", "Aquarium", "Treats"],
}
BRANDS = ["Acme", "Northwind", "Contoso", "Globex", "Initech", "Umbrella", "Stark", "Wayne",
          "Hooli", "Vandelay", "Soylent", "Tyrell", "Cyberdyne", "Wonka", "Gringotts", "Oceanic",
          "Pied Piper", "Aperture", "Monarch", "Dunder"]
# (channel, utm_source, utm_medium, referrer, weight): the session's traffic source.
TRAFFIC = [
    ("direct", None, None, None, 0.30),
    ("organic_search", None, None, "https://www.google.com/", 0.20),
    ("paid_search", "google", "cpc", "https://www.google.com/", 0.14),
    ("social", "facebook", "social", "https://www.facebook.com/", 0.08),
    ("social", "instagram", "social", "https://l.instagram.com/", 0.04),
    ("email", "newsletter", "email", None, 0.14),
    ("referral", None, None, "https://www.couponsite.example/", 0.05),
    ("display", "dsp", "display", "https://ads.example.net/", 0.05),
]
CAMPAIGNS = ["spring_sale", "summer_sale", "back_to_school", "black_friday", "holiday",
             "new_arrivals", "loyalty_rewards", "winback"]
JUNK_EMAILS = ["test@test.com", "noemail@example.com", "none@none.com"]
JUNK_PHONES = ["0000000000", "1111111111", "5555555555"]
SOURCES = ["crm", "pos", "app", "web"]

# Review sentences by language, polarity and aspect (the generator's reviews). "{p}" is a product
# word. Noise is planted on purpose: negation ("not bad"), intensifiers, sarcasm (positive words,
# negative meaning: a negative review), mixed reviews (one aspect praised, another criticised).
REVIEW_EN = {
    "positive": {
        "price": ["Great value for the price.", "Not expensive at all and works well.", "Worth every penny."],
        "quality": ["The quality is excellent, really well made.", "Very sturdy and the material feels premium.",
                    "Not bad at all, better than I expected."],
        "delivery": ["Delivery was fast and the package arrived early.", "Shipping was quick, arrived in two days."],
        "service": ["Customer service was very helpful.", "The staff were friendly and the refund was easy."],
        "size_fit": ["The size fits perfectly.", "Fits great, true to size."],
        "packaging": ["Nicely packaged in a sturdy box.", "The packaging was lovely."],
    },
    "negative": {
        "price": ["Way too expensive for what you get.", "Overpriced and not worth the money."],
        "quality": ["The quality is terrible, it broke after a week.", "Cheap flimsy material, very disappointed.",
                    "Not good at all, the stitching came apart."],
        "delivery": ["Delivery was late and nobody told me why.", "The package arrived two weeks late."],
        "service": ["Customer service was rude and unhelpful.", "The refund took forever, awful support."],
        "size_fit": ["Too small, the size chart is wrong.", "Does not fit, way too tight."],
        "packaging": ["The box was damaged and the packaging torn.", "Poor packaging, it arrived crushed."],
    },
    "sarcasm": ["Oh great, another {p} that stopped working after two days.",
                "Just perfect, the {p} arrived broken. Thanks a lot."],
    "overall_positive": ["I love this {p}!", "Highly recommend this {p}.", "Really happy with it."],
    "overall_negative": ["I regret buying this {p}.", "Would not recommend.", "Very disappointed overall."],
    "neutral": ["It arrived on Tuesday.", "I bought this {p} for my sister.", "It is a {p}."],
}
REVIEW_ZH = {
    "positive": {
        "price": ["价格很实惠，性价比高。", "很便宜，划算。"],
        "quality": ["质量很好，做工精细。", "材质不错，很耐用。"],
        "delivery": ["物流很快，第二天就到货了。", "快递速度很快。"],
        "service": ["客服态度很好，服务周到。", "售后很负责，退货很方便。"],
        "size_fit": ["尺码很合身。", "大小正合适。"],
        "packaging": ["包装很精美。", "包装完好，很用心。"],
    },
    "negative": {
        "price": ["太贵了，不值这个价格。", "价格偏高，性价比很差。"],
        "quality": ["质量太差了，用了一周就坏了。", "做工粗糙，有瑕疵。"],
        "delivery": ["物流太慢了，等了两个星期。", "快递很慢，发货也慢。"],
        "service": ["客服态度很差，不理人。", "售后太差，退款一直不处理。"],
        "size_fit": ["尺码偏小，穿不上。", "大小不合适，太紧了。"],
        "packaging": ["包装破损，盒子都压坏了。", "外包装很差。"],
    },
    "sarcasm": ["真是太好了，刚用两天就坏了。", "呵呵，这质量真是没谁了。"],
    "overall_positive": ["非常满意，推荐购买！", "很喜欢，下次还会再来。", "好评！"],
    "overall_negative": ["非常失望，不推荐。", "后悔买了。", "再也不会买了。"],
    "neutral": ["周二收到的。", "给家人买的。"],
}
REVIEW_CHANNELS = ["app", "web", "store", "survey", "social"]
