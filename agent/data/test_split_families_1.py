"""Fact tables of the frozen test split (agent/data/build_test_split.py): pharmacy and dosage, parking, software releases, vet clinic records.
Plain data in the shapes of test_split_templates.py; the order of FAMILIES is part of the built file.
"""

from __future__ import annotations

from agent.data.test_split_templates import Attr, E, Family

FAMILIES: list[Family] = []

# ----------------------------------------------------------------- pharmacy and dosage

MEDS_FILLERS = [
    "Bring your insurance card when you pick up.",
    "Generic versions are used unless your doctor says otherwise.",
    "Text reminders are switched on for this account.",
    "Flu shots are available without an appointment.",
    "The drive-through window is closed for repairs.",
    "Ask the pharmacist before mixing any of these with alcohol.",
]

FAMILIES.append(Family(
    "meds", "rx", ["my prescription", "the prescription"],
    [E("lisinopril", "the lisinopril", "Lisinopril", ["the lisinopril", "my lisinopril"],
       ["The lisinopril.", "I mean the lisinopril.", "Lisinopril, please."],
       copay="$4", refills="2 refills", ready="Tuesday"),
     E("atorvastatin", "the atorvastatin", "Atorvastatin", ["the atorvastatin", "my atorvastatin"],
       ["The atorvastatin.", "I mean the atorvastatin one.", "Atorvastatin."],
       copay="$12", refills="5 refills", ready="Friday"),
     E("amoxicillin", "the amoxicillin", "Amoxicillin", ["the amoxicillin", "my amoxicillin"],
       ["The amoxicillin.", "The antibiotic, amoxicillin.", "Amoxicillin, please."],
       copay="$9.50", refills="1 refill", ready="Thursday")],
    [Attr("copay", "money",
          ["{E} has a copay of {v}.", "The copay for {e} is {v}.", "{E} comes to {v} after insurance."],
          "Copays", ["What's the copay for {ref}?", "How much will I pay for {ref}?",
                     "How much is {ref} going to cost me?"],
          lo=("the cheaper prescription", "the cheapest prescription"),
          hi=("the pricier prescription", "the most expensive prescription")),
     Attr("refills", "qty", ["{E} has {v} left.", "{E} still has {v} remaining."],
          "Refills left", ["How many refills are left on {ref}?", "How many refills do I have on {ref}?"]),
     Attr("ready", "day", ["{E} will be ready on {v}.", "{E} is ready for pickup on {v}."],
          "Ready for pickup", ["When will {ref} be ready?", "What day can I pick up {ref}?"],
          pair="{s} on {v}",
          lo=("the prescription that's ready sooner", "the prescription that's ready first"),
          hi=("the prescription that's ready later", "the prescription that's ready last"))],
    MEDS_FILLERS, ["Prescriptions on file for J. Morales:", "Pharmacy account notes:"],
))

FAMILIES.append(Family(
    "meds", "ibuprofen", ["the ibuprofen", "my ibuprofen"],
    [E("200mg", "the 200 mg ibuprofen", "200 mg",
       ["the 200 mg ibuprofen", "the 200 mg tablets"],
       ["The 200 mg tablets.", "I mean the 200 mg ones.", "The lower strength, 200 mg."],
       maxday="6 tablets", gap="4 hours", price="$5.49"),
     E("400mg", "the 400 mg ibuprofen", "400 mg",
       ["the 400 mg ibuprofen", "the 400 mg tablets"],
       ["The 400 mg tablets.", "I mean the 400 mg ones.", "The stronger one, 400 mg."],
       maxday="3 tablets", gap="8 hours", price="$7.99")],
    [Attr("maxday", "qty",
          ["No more than {v} a day of {e}.", "The daily maximum for {e} is {v}.",
           "{E}: at most {v} in 24 hours."],
          "Daily maximum", ["How many tablets of {ref} can I take in a day?",
                            "What's the daily maximum for {ref}?"], pair="{v} of the {s}"),
     Attr("gap", "qty", ["Doses of {e} should be at least {v} apart.", "With {e}, wait {v} between doses."],
          "Time between doses", ["How long should I wait between doses of {ref}?",
                                 "How far apart do doses of {ref} need to be?"], pair="{v} for the {s}"),
     Attr("price", "money", ["A pack of {e} costs {v}.", "{E} is {v} a pack."],
          "Pack prices", ["How much is a pack of {ref}?", "What does {ref} cost?"],
          lo=("the cheaper ibuprofen", "the cheapest ibuprofen"),
          hi=("the pricier ibuprofen", "the priciest ibuprofen"))],
    MEDS_FILLERS, ["Medicine cabinet notes:", "From the pharmacy leaflet:"],
))
# ----------------------------------------------------------------------------- parking

PARKING_FILLERS = [
    "Overnight parking is not allowed on Main Street.",
    "Most pay machines take contactless cards.",
    "Lost tickets are charged the full daily maximum.",
    "Street sweeping happens early on weekday mornings.",
    "Motorcycles park free in the marked bays.",
    "The council wants feedback on the new signs.",
]

FAMILIES.append(Family(
    "parking", "garages", ["the garage", "the parking garage"],
    [E("pier-street", "the Pier Street garage", "Pier Street",
       ["the Pier Street garage", "the garage on Pier Street"],
       ["The one on Pier Street.", "Pier Street.", "I mean the Pier Street garage."],
       rate="$3.50", closes="11 pm", clearance="2.1 m"),
     E("market-square", "the Market Square garage", "Market Square",
       ["the Market Square garage", "the garage at Market Square"],
       ["The Market Square one.", "Market Square.", "I mean the garage at Market Square."],
       rate="$2.75", closes="9:30 pm", clearance="1.9 m"),
     E("station-road", "the Station Road garage", "Station Road",
       ["the Station Road garage", "the garage on Station Road"],
       ["Station Road.", "The one on Station Road.", "I mean the Station Road garage."],
       rate="$4.25", closes="midnight", clearance="2.3 m")],
    [Attr("rate", "money", ["{E} charges {v} an hour.", "Parking at {e} is {v} per hour.",
                            "An hour at {e} costs {v}."],
          "Hourly rates", ["How much is {ref} per hour?", "What does {ref} charge an hour?",
                           "What's the hourly rate at {ref}?"],
          lo=("the cheaper garage", "the cheapest garage"),
          hi=("the pricier garage", "the most expensive garage")),
     Attr("closes", "time", ["{E} closes at {v}.", "{E} locks its gates at {v}."],
          "Closing times", ["What time does {ref} close?", "How late is {ref} open?", "When does {ref} shut?"],
          hi=("the garage that stays open later", "the garage that stays open latest"),
          lo=("the garage that closes earlier", "the garage that closes earliest")),
     Attr("clearance", "qty", ["{E} has a height limit of {v}.", "The clearance at {e} is {v}."],
          "Height limits", ["What's the height limit at {ref}?", "What's the clearance at {ref}?"],
          hi=("the garage with the higher clearance", "the garage with the highest clearance"),
          lo=("the garage with the lower clearance", "the garage with the lowest clearance"))],
    PARKING_FILLERS, ["City parking notes:"],
))

FAMILIES.append(Family(
    "parking", "airport", ["airport parking", "parking at the airport"],
    [E("short-stay", "the short-stay lot", "short-stay", ["the short-stay lot", "short-stay parking"],
       ["The short-stay lot.", "Short stay.", "I mean short-stay parking."],
       daily="$45", walk="3 minutes"),
     E("long-stay", "the long-stay lot", "long-stay", ["the long-stay lot", "long-stay parking"],
       ["The long-stay lot.", "Long stay.", "I mean long-stay parking."],
       daily="$18", walk="10 minutes"),
     E("economy", "the economy lot", "economy", ["the economy lot", "economy parking"],
       ["The economy lot.", "Economy.", "I mean the economy one."],
       daily="$11", walk="20 minutes")],
    [Attr("daily", "money", ["{E} costs {v} a day.", "A day in {e} is {v}."],
          "Daily rates", ["How much is {ref} per day?", "What does {ref} cost for a day?"],
          lo=("the cheaper lot", "the cheapest lot"), hi=("the pricier lot", "the most expensive lot")),
     Attr("walk", "qty", ["From {e} it's {v} to the terminal.", "{E} is {v} from the terminal."],
          "Time to the terminal", ["How far is {ref} from the terminal?",
                                   "How long does it take to get from {ref} to the terminal?"],
          pair="{v} from the {s} lot",
          lo=("the lot nearer the terminal", "the lot nearest the terminal"),
          hi=("the lot farther from the terminal", "the lot farthest from the terminal"))],
    PARKING_FILLERS + ["The terminal drop-off zone allows five minutes of waiting."],
    ["Airport parking options:"],
))

FAMILIES.append(Family(
    "parking", "permits", ["my parking permit", "the residents' permit"],
    [E("zone-a", "the Zone A permit", "Zone A", ["the Zone A permit", "my Zone A permit"],
       ["Zone A.", "The Zone A one.", "I'm in Zone A."], price="$60", renew="March 31"),
     E("zone-b", "the Zone B permit", "Zone B", ["the Zone B permit", "my Zone B permit"],
       ["Zone B.", "The Zone B one.", "I'm in Zone B."], price="$85", renew="September 30")],
    [Attr("price", "money", ["{E} costs {v} a year.", "The yearly price of {e} is {v}."],
          "Yearly prices", ["How much is {ref} a year?", "What does {ref} cost per year?"],
          lo=("the cheaper permit", "the cheapest permit"), hi=("the pricier permit", "the priciest permit")),
     Attr("renew", "date", ["{E} must be renewed by {v}.", "{E} expires on {v}."],
          "Renewal deadlines", ["When do I need to renew {ref}?", "When does {ref} expire?"])],
    PARKING_FILLERS, ["Residents' parking:"],
))

# ------------------------------------------------------------------- software releases

SOFTWARE_FILLERS = [
    "Release notes are posted on the project blog.",
    "Security fixes are announced on the mailing list.",
    "The download mirror in Frankfurt is being retired.",
    "Bug reports go through the public tracker.",
    "Nightly builds are not signed.",
    "The installer now checks for free disk space first.",
]

FAMILIES.append(Family(
    "software", "harbor-os", ["Harbor OS"],
    [E("v5", "Harbor OS 5", "version 5", ["Harbor OS 5", "version 5 of Harbor OS"],
       ["Version 5.", "Harbor OS 5, the LTS one.", "I'm on 5."],
       released="March 2022", support="April 2027", download="3.2 GB"),
     E("v6", "Harbor OS 6", "version 6", ["Harbor OS 6", "version 6 of Harbor OS"],
       ["Version 6.", "Harbor OS 6.", "I'm on 6."],
       released="September 2023", support="October 2025", download="3.8 GB"),
     E("v7", "Harbor OS 7", "version 7", ["Harbor OS 7", "version 7 of Harbor OS"],
       ["Version 7.", "Harbor OS 7, the newest.", "I'm on 7."],
       released="May 2025", support="May 2028", download="4.1 GB")],
    [Attr("support", "month", ["{E} gets security updates until {v}.", "Support for {e} ends in {v}."],
          "End of support", ["When does support end for {ref}?", "Until when does {ref} get security updates?"],
          pair="{s} in {v}"),
     Attr("released", "month", ["{E} was released in {v}.", "{E} came out in {v}."],
          "Release dates", ["When was {ref} released?", "When did {ref} come out?"], pair="{s} in {v}",
          lo=("the older version of Harbor OS", "the oldest version of Harbor OS"),
          hi=("the newer version of Harbor OS", "the newest version of Harbor OS"), ask=False),
     Attr("download", "qty", ["{E} is a {v} download.", "The installer for {e} is {v}."],
          "Download sizes", ["How big is the download for {ref}?", "What's the download size of {ref}?"],
          pair="{v} for {s}", ask=False)],
    SOFTWARE_FILLERS, ["Harbor OS release notes:"],
))

FAMILIES.append(Family(
    "software", "api", ["the Tidewater API", "the API"],
    [E("v1", "version 1 of the Tidewater API", "v1", ["API v1", "the v1 API"],
       ["v1.", "I'm still on version 1.", "The v1 API."],
       rate=("100 requests per minute", ["100 requests a minute", "100 requests/minute", "100 per minute",
                                         "100 requests"]),
       upload="10 MB"),
     E("v2", "version 2 of the Tidewater API", "v2", ["API v2", "the v2 API"],
       ["v2.", "I'm on version 2.", "The v2 API."],
       rate=("600 requests per minute", ["600 requests a minute", "600 requests/minute", "600 per minute",
                                         "600 requests"]),
       upload="50 MB")],
    [Attr("rate", "text", ["{E} allows {v}.", "The rate limit for {e} is {v}."],
          "Rate limits", ["What's the rate limit on {ref}?", "How many requests per minute does {ref} allow?"],
          pair="{v} on {s}"),
     Attr("upload", "qty", ["{E} accepts uploads of up to {v}.", "The upload limit for {e} is {v}."],
          "Upload limits", ["What's the upload limit on {ref}?", "How big a file can I upload with {ref}?"],
          pair="{v} on {s}")],
    SOFTWARE_FILLERS, ["Tidewater developer notes:"],
    indirect=[("v2", "the newer API version", "rate"), ("v1", "the older API version", "rate")],
))

FAMILIES.append(Family(
    "software", "notely", ["Notely", "the Notely app"],
    [E("ios", "the iOS app", "iOS", ["the iOS app", "Notely on iOS"],
       ["The iOS app.", "I'm on an iPhone, so iOS.", "iOS."],
       version="4.12", minos="iOS 16"),
     E("android", "the Android app", "Android", ["the Android app", "Notely on Android"],
       ["The Android app.", "Android.", "I use it on an Android phone."],
       version="4.11.2", minos="Android 10"),
     E("windows", "the Windows app", "Windows", ["the Windows app", "Notely on Windows"],
       ["The Windows app.", "Windows.", "On my Windows laptop."],
       version="4.10", minos="Windows 11")],
    [Attr("version", "text", ["{E} is at version {v}.", "The current release of {e} is {v}."],
          "Latest versions", ["What's the latest version of {ref}?", "Which version is {ref} on now?"]),
     Attr("minos", "text", ["{E} needs {v} or later.", "{E} runs on {v} and up."],
          "Minimum systems", ["What system does {ref} need?", "What's the minimum OS for {ref}?"],
          pair="{v} for the {s} app")],
    SOFTWARE_FILLERS, ["Notely release status:"],
))

# --------------------------------------------------------------------- vet clinic records

VET_FILLERS = [
    "The clinic is closed on public holidays.",
    "!Dr. Alvarez is on leave until next month.",
    "Bring a stool sample to annual checkups.",
    "Flea treatment is cheaper in the three-pack.",
    "The waiting room has a separate area for cats.",
    "Call ahead if your pet needs to be sedated.",
]

FAMILIES.append(Family(
    "vet", "dogs", ["my dog", "the dog"],
    [E("biscuit", "Biscuit", "Biscuit", ["Biscuit"], ["Biscuit.", "Biscuit, the beagle.", "I mean Biscuit."],
       weight="11 kg", booster="May 12", food="1 cup"),
     E("pepper", "Pepper", "Pepper", ["Pepper"], ["Pepper.", "Pepper, the collie.", "I mean Pepper."],
       weight="19 kg", booster="October 3", food="2 cups")],
    [Attr("weight", "qty", ["{E} weighed {v} at the last visit.", "{E}'s weight is {v}."],
          "Weights", ["How much does {ref} weigh?", "What did {ref} weigh at the last visit?"],
          lo=("the lighter dog", "the lightest dog"), hi=("the heavier dog", "the heaviest dog")),
     Attr("booster", "date", ["{E}'s rabies booster is due on {v}.", "{E} needs a rabies booster by {v}."],
          "Rabies boosters due", ["When is {ref}'s rabies booster due?",
                                  "When does {ref} need the next rabies shot?"]),
     Attr("food", "qty", ["{E} should get {v} of kibble per meal.", "{E} eats {v} of food at each meal."],
          "Food per meal", ["How much food should {ref} get per meal?",
                            "How much kibble does {ref} get at each meal?"])],
    VET_FILLERS, ["Lakeside Vet records for the Novak household:", "Pet notes:"],
))

FAMILIES.append(Family(
    "vet", "cats", ["my cat", "the cat"],
    [E("miso", "Miso", "Miso", ["Miso"], ["Miso.", "I mean Miso.", "Miso, the ginger one."],
       weight="4.2 kg", checkup="June 4", diet=("renal diet", ["renal"])),
     E("tofu", "Tofu", "Tofu", ["Tofu"], ["Tofu.", "I mean Tofu.", "Tofu, the white one."],
       weight="5.8 kg", checkup="June 18", diet=("weight-control diet", ["weight control", "weight-control"])),
     E("juniper", "Juniper", "Juniper", ["Juniper"], ["Juniper.", "I mean Juniper.", "Juniper, the kitten."],
       weight="3.6 kg", checkup="July 2", diet=("sensitive-stomach diet", ["sensitive stomach"]))],
    [Attr("weight", "qty", ["{E} weighs {v}.", "{E} came in at {v} on the clinic scale."],
          "Weights", ["How much does {ref} weigh?", "What's {ref}'s weight?"],
          lo=("the lighter cat", "the lightest cat"), hi=("the heavier cat", "the heaviest cat")),
     Attr("checkup", "date", ["{E}'s next checkup is on {v}.", "{E} is booked for a checkup on {v}."],
          "Next checkups", ["When is {ref}'s next checkup?", "When's {ref} due at the vet next?"]),
     Attr("diet", "text", ["{E} is on a {v}.", "{E} has been switched to a {v}."],
          "Diets", ["Which diet is {ref} on?", "What food is {ref} supposed to eat?"], pair="{s} on a {v}")],
    VET_FILLERS, ["Cat care notes:"],
))

FAMILIES.append(Family(
    "vet", "visits", ["my appointment", "our vet appointment"],
    [E("dental", "the dental cleaning", "dental cleaning", ["the dental cleaning", "the teeth cleaning"],
       ["The dental cleaning.", "The teeth cleaning one.", "I mean the dental."],
       date="April 8", time="9:15 am"),
     E("vaccines", "the vaccination visit", "vaccinations", ["the vaccination visit", "the vaccine appointment"],
       ["The vaccination visit.", "The one for the vaccines.", "I mean the vaccinations."],
       date="April 15", time="3:40 pm")],
    [Attr("date", "date", ["{E} is on {v}.", "{E} is booked for {v}."],
          "Appointments", ["What day is {ref}?", "When is {ref}?"], pair="{s} on {v}",
          lo=("the first appointment", "the first appointment"), hi=("the second appointment", "the last appointment")),
     Attr("time", "time", ["{E} starts at {v}.", "Please arrive for {e} by {v}."],
          "Start times", ["What time is {ref}?", "What time should we be there for {ref}?"], pair="{s} at {v}")],
    VET_FILLERS, ["Lakeside Vet bookings:"],
))
