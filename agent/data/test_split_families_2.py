"""Fact tables of the frozen test split (agent/data/build_test_split.py): library loans, plant care, household bills, school.
Plain data in the shapes of test_split_templates.py; the order of FAMILIES is part of the built file.
"""

from __future__ import annotations

from agent.data.test_split_templates import Attr, E, Family

FAMILIES: list[Family] = []

# ------------------------------------------------------------------------- library loans

LIBRARY_FILLERS = [
    "The book drop is emptied every morning.",
    "The children's section is being repainted.",
    "Museum passes can be reserved online.",
    "Quiet study rooms are upstairs.",
    "The used-book sale raises money for the branch.",
    "Printing is paid at the front desk.",
]

FAMILIES.append(Family(
    "library", "loans", ["my library book", "the book I borrowed"],
    [E("orchard", "The Silent Orchard", "The Silent Orchard", ["The Silent Orchard"],
       ["The Silent Orchard.", "The Silent Orchard, please.", "I mean The Silent Orchard."],
       due="May 6", renewals=("2 renewals", ["two renewals", "2 more times", "two more times", "twice"]),
       branch=("the Harbor branch", ["Harbor branch", "Harbor"])),
     E("mosses", "A Field Guide to Mosses", "A Field Guide to Mosses",
       ["A Field Guide to Mosses", "the moss guide"],
       ["The moss field guide.", "A Field Guide to Mosses.", "I mean the guide to mosses."],
       due="May 13", renewals=("1 renewal", ["one renewal", "1 more time", "one more time"]),
       branch=("Central Library", ["Central", "the central library"])),
     E("trains", "Night Trains of Europe", "Night Trains of Europe", ["Night Trains of Europe", "the train book"],
       ["Night Trains of Europe.", "The one about night trains.", "I mean Night Trains of Europe."],
       due="May 20", renewals=("3 renewals", ["three renewals", "3 more times", "three more times"]),
       branch=("the Elm Street branch", ["Elm Street branch", "Elm Street"]))],
    [Attr("due", "date", ["{E} is due back on {v}.", "The due date for {e} is {v}."],
          "Due dates", ["When is {ref} due?", "When do I have to return {ref}?"],
          lo=("the book that's due sooner", "the book that's due first"),
          hi=("the book that's due later", "the book that's due last")),
     Attr("renewals", "text", ["{E} has {v} left.", "{E} still has {v} left."],
          "Renewals left", ["How many renewals are left on {ref}?", "How many times can I still renew {ref}?"]),
     Attr("branch", "text", ["{E} was borrowed from {v}.", "{E} belongs to {v}."],
          "Home branches", ["Which branch does {ref} belong to?", "Which branch did {ref} come from?"],
          pair="{s} from {v}")],
    LIBRARY_FILLERS, ["Library account, current loans:", "Loans on card ending 4471:"],
))

FAMILIES.append(Family(
    "library", "holds", ["my hold", "the book on hold for me"],
    [E("salt", "Salt and Smoke", "Salt and Smoke", ["Salt and Smoke"],
       ["Salt and Smoke.", "The one called Salt and Smoke.", "I mean Salt and Smoke."],
       shelf="H-12", until="May 9"),
     E("winter", "Winter Harbors", "Winter Harbors", ["Winter Harbors"],
       ["Winter Harbors.", "Winter Harbors, please.", "I mean Winter Harbors."],
       shelf="H-31", until="May 11")],
    [Attr("shelf", "text", ["{E} is waiting on hold shelf {v}.", "Pick up {e} from shelf {v}."],
          "Hold shelves", ["Where do I pick up {ref}?", "Which hold shelf has {ref}?"], pair="{s} on {v}"),
     Attr("until", "date", ["{E} will be held until {v}.", "Collect {e} by {v}."],
          "Held until", ["Until when is {ref} held?", "When do I need to collect {ref} by?"],
          lo=("the hold that expires sooner", "the hold that expires first"))],
    LIBRARY_FILLERS, ["Holds ready for pickup:"],
))

FAMILIES.append(Family(
    "library", "rooms", ["my study room booking"],
    [E("tuesday", "the Tuesday booking", "Tuesday", ["the Tuesday booking", "my Tuesday study room"],
       ["The Tuesday one.", "Tuesday's booking.", "I mean Tuesday."], room="Room 3", start="10 am"),
     E("thursday", "the Thursday booking", "Thursday", ["the Thursday booking", "my Thursday study room"],
       ["The Thursday one.", "Thursday's booking.", "I mean Thursday."], room="Room 7", start="4 pm")],
    [Attr("room", "text", ["{E} is in {v}.", "{E} is for {v}."],
          "Rooms", ["Which room is {ref} in?", "What room did I get for {ref}?"], pair="{s} in {v}"),
     Attr("start", "time", ["{E} starts at {v}.", "{E} begins at {v}."],
          "Start times", ["What time does {ref} start?", "When does {ref} begin?"], pair="{s} at {v}",
          lo=("the earlier booking", "the earliest booking"))],
    LIBRARY_FILLERS, ["Study room bookings:"],
))

# ---------------------------------------------------------------------------- plant care

GARDEN_FILLERS = [
    "The compost bin needs turning.",
    "Slugs have been eating the lettuce.",
    "Rain barrels should be emptied before the frost.",
    "The shed key is under the blue pot.",
    "Mulch keeps the roots cool in summer.",
    "The hose has a slow leak near the tap.",
]

FAMILIES.append(Family(
    "garden", "ferns", ["the fern", "my fern"],
    [E("boston", "the Boston fern", "Boston fern", ["the Boston fern"],
       ["The Boston fern.", "The big Boston one.", "I mean the Boston fern."],
       water=("every 3 days", ["every three days"]), light=("bright indirect light", ["indirect light"])),
     E("maidenhair", "the maidenhair fern", "maidenhair fern", ["the maidenhair fern", "the maidenhair"],
       ["The maidenhair.", "The maidenhair fern.", "I mean the delicate maidenhair one."],
       water=("every day", ["daily"]), light=("shade", ["shady spot"])),
     E("birds-nest", "the bird's nest fern", "bird's nest fern", ["the bird's nest fern"],
       ["The bird's nest fern.", "The bird's nest one.", "I mean the bird's nest fern."],
       water=("once a week", ["weekly", "every week"]), light=("morning sun", ["morning sunlight"]))],
    [Attr("water", "text", ["Water {e} {v}.", "{E} wants water {v}."],
          "Watering", ["How often should I water {ref}?", "How often does {ref} need water?"]),
     Attr("light", "text", ["{E} likes {v}.", "Keep {e} in {v}."],
          "Light", ["What kind of light does {ref} need?", "What light does {ref} like?"])],
    GARDEN_FILLERS, ["Houseplant notes:"],
))

FAMILIES.append(Family(
    "garden", "tomatoes", ["the tomatoes", "my tomato plants"],
    [E("cherry", "the cherry tomatoes", "cherry tomatoes", ["the cherry tomatoes"],
       ["The cherry tomatoes.", "The little cherry ones.", "I mean the cherry tomatoes."],
       spacing="45 cm", harvest="65 days"),
     E("beefsteak", "the beefsteak tomatoes", "beefsteak tomatoes", ["the beefsteak tomatoes"],
       ["The beefsteak tomatoes.", "The big beefsteak ones.", "I mean the beefsteaks."],
       spacing="60 cm", harvest="85 days")],
    [Attr("spacing", "qty", ["Space {e} {v} apart.", "{E} need {v} between plants."],
          "Spacing", ["How far apart should I plant {ref}?", "What spacing do {ref} need?"]),
     Attr("harvest", "qty", ["{E} are ready to pick about {v} after planting.",
                             "Expect to harvest {e} {v} after planting."],
          "Days to harvest", ["How long until {ref} are ready to pick?", "How many days until I can harvest {ref}?"],
          lo=("the tomatoes that ripen sooner", "the tomatoes that ripen soonest"),
          hi=("the tomatoes that take longer to ripen", "the tomatoes that take longest to ripen"))],
    GARDEN_FILLERS, ["Vegetable bed plan:"],
))

FAMILIES.append(Family(
    "garden", "feed", ["the plant food", "the fertilizer"],
    [E("rose", "the rose feed", "rose feed", ["the rose feed"],
       ["The rose feed.", "The one for the roses.", "I mean the rose feed."],
       dose="10 ml", often=("every 2 weeks", ["every two weeks", "fortnightly"])),
     E("lawn", "the lawn feed", "lawn feed", ["the lawn feed"],
       ["The lawn feed.", "The one for the grass.", "I mean the lawn feed."],
       dose="25 ml", often=("every 6 weeks", ["every six weeks"])),
     E("tomato", "the tomato feed", "tomato feed", ["the tomato feed"],
       ["The tomato feed.", "The one for the tomatoes.", "I mean the tomato feed."],
       dose="20 ml", often=("every week", ["weekly", "once a week"]))],
    [Attr("dose", "qty", ["Use {v} of {e} per watering can.", "{E}: {v} per can of water."],
          "Doses per watering can", ["How much of {ref} goes in a watering can?",
                                     "How much of {ref} do I mix per can?"]),
     Attr("often", "text", ["Apply {e} {v}.", "{E} goes on {v}."],
          "How often", ["How often should I use {ref}?", "How often does {ref} go on?"])],
    GARDEN_FILLERS, ["Garden shed labels:"],
))

# ------------------------------------------------------------------------- household bills

BILLS_FILLERS = [
    "Paper statements now cost extra.",
    "The landlord covers the trash service.",
    "Meter readings are estimated in winter.",
    "Late payments add a small fee.",
    "Paperless billing is switched on for every account.",
    "The bank card on file expires soon.",
]

FAMILIES.append(Family(
    "bills", "utilities", ["my bill", "the utility bill"],
    [E("electricity", "the electricity bill", "Electricity", ["the electricity bill", "the power bill"],
       ["The electricity bill.", "Electricity.", "The power one."], amount="$84.20", due="June 12"),
     E("water", "the water bill", "Water", ["the water bill"],
       ["The water bill.", "Water.", "I mean the water one."], amount="$31.75", due="June 20"),
     E("gas", "the gas bill", "Gas", ["the gas bill"],
       ["The gas bill.", "Gas.", "I mean the gas one."], amount="$56.10", due="June 28")],
    [Attr("amount", "money", ["{E} is {v} this month.", "{E} came to {v}."],
          "This month's amounts", ["How much is {ref} this month?", "What do I owe on {ref}?"],
          lo=("the smaller bill", "the smallest bill"), hi=("the bigger bill", "the biggest bill")),
     Attr("due", "date", ["{E} is due on {v}.", "Payment for {e} is due {v}."],
          "Due dates", ["When is {ref} due?", "What's the due date for {ref}?"],
          lo=("the bill that's due sooner", "the bill that's due first"))],
    BILLS_FILLERS, ["Household bills for June:"],
))

FAMILIES.append(Family(
    "bills", "subscriptions", ["my subscription"],
    [E("reelbox", "Reelbox", "Reelbox", ["Reelbox", "the Reelbox subscription"],
       ["Reelbox.", "The Reelbox one.", "I mean Reelbox."],
       price="$15.99", renews="July 3"),
     E("tunely", "Tunely", "Tunely", ["Tunely", "my Tunely plan"],
       ["Tunely.", "The Tunely one.", "I mean Tunely."], price="$10.99", renews="July 19"),
     E("vaultly", "Vaultly", "Vaultly", ["Vaultly", "the Vaultly plan"],
       ["Vaultly.", "The Vaultly one.", "I mean Vaultly."], price="$2.99", renews="August 1")],
    [Attr("price", "money", ["{E} costs {v} a month.", "{E} charges {v} per month."],
          "Monthly prices", ["How much is {ref} a month?", "What am I paying per month for {ref}?"],
          lo=("the cheaper subscription", "the cheapest subscription"),
          hi=("the pricier subscription", "the priciest subscription")),
     Attr("renews", "date", ["{E} renews on {v}.", "{E} will renew on {v}."],
          "Renewal dates", ["When does {ref} renew?", "When is {ref} up for renewal?"], pair="{s} on {v}")],
    BILLS_FILLERS, ["Subscriptions on the joint card:"],
))

FAMILIES.append(Family(
    "bills", "insurance", ["my insurance", "the insurance policy"],
    [E("home", "the home insurance", "Home", ["the home insurance", "the house insurance"],
       ["The home insurance.", "For the house.", "I mean home insurance."],
       deductible="$500", premium="$38", renewal="September 9"),
     E("car", "the car insurance", "Car", ["the car insurance", "the auto policy"],
       ["The car insurance.", "For the car.", "I mean the auto policy."],
       deductible="$1,000", premium="$71", renewal="November 15")],
    [Attr("deductible", "money", ["{E} has a {v} deductible.", "The deductible on {e} is {v}."],
          "Deductibles", ["What's the deductible on {ref}?", "How big is the deductible for {ref}?"]),
     Attr("premium", "money", ["{E} costs {v} a month.", "The monthly premium for {e} is {v}."],
          "Monthly premiums", ["How much is {ref} a month?", "What's the monthly premium for {ref}?"],
          lo=("the cheaper policy", "the cheapest policy"), hi=("the pricier policy", "the priciest policy")),
     Attr("renewal", "date", ["{E} renews on {v}.", "{E} is up for renewal on {v}."],
          "Renewals", ["When does {ref} renew?", "When is {ref} up for renewal?"], pair="{s} on {v}")],
    BILLS_FILLERS, ["Insurance summary:"],
))

# --------------------------------------------------------------------------------- school

SCHOOL_FILLERS = [
    "Picture day forms are in the blue folder.",
    "The bake sale needs volunteers.",
    "Lost property is kept by the gym doors.",
    "The school nurse asked for updated allergy forms.",
    "Parents' evening sign-up opens soon.",
    "Library bags go back every week.",
]

FAMILIES.append(Family(
    "school", "kids", ["my kid", "my child"],
    [E("maya", "Maya", "Maya", ["Maya"], ["Maya.", "I mean Maya.", "Maya, my older one."],
       grade=("grade 3", ["third grade", "3rd grade"]), teacher=("Ms. Okafor", ["Okafor"]),
       pickup=("3:15 pm", ["3:15 p.m.", "15:15"])),
     E("leo", "Leo", "Leo", ["Leo"], ["Leo.", "I mean Leo.", "Leo, the little one."],
       grade=("kindergarten", ["kinder"]), teacher=("Mr. Lindqvist", ["Lindqvist"]),
       pickup=("12:30 pm", ["12:30 p.m."]))],
    [Attr("grade", "text", ["{E} is in {v}.", "{E} started {v} this year."],
          "Grades", ["What grade is {ref} in?"], ask=False, target=False),
     Attr("teacher", "text", ["{E}'s teacher is {v}.", "{E} is in {v}'s class."],
          "Teachers", ["Who is {ref}'s teacher?", "What's the name of {ref}'s teacher?"]),
     Attr("pickup", "text", ["{E} gets out at {v}.", "Pickup for {e} is at {v}."],
          "Pickup times", ["What time do I pick up {ref}?", "When does {ref} get out of school?"],
          pair="{s} at {v}")],
    SCHOOL_FILLERS, ["School notes for the Haddad kids:"],
    indirect=[("maya", "my third grader", "grade"), ("leo", "my kindergartner", "grade")],
))

FAMILIES.append(Family(
    "school", "clubs", ["the after-school club", "Sam's club"],
    [E("chess", "chess club", "Chess", ["chess club", "the chess club"],
       ["Chess club.", "The chess one.", "I mean chess."],
       day=("Monday", ["Mondays"]), room="art room", fee="$40"),
     E("robotics", "robotics club", "Robotics", ["robotics club", "the robotics club"],
       ["Robotics.", "The robotics club.", "I mean robotics."],
       day=("Wednesday", ["Wednesdays"]), room="science lab", fee="$65"),
     E("choir", "choir", "Choir", ["choir", "the choir"],
       ["Choir.", "The choir.", "I mean choir practice."],
       day=("Thursday", ["Thursdays"]), room="music room", fee="$25")],
    [Attr("day", "day", ["{E} meets every {v}.", "{E} is on {v} after school."],
          "Meeting days", ["What day is {ref}?", "Which day does {ref} meet?"], pair="{s} on {v}"),
     Attr("room", "text", ["{E} meets in the {v}.", "{E} uses the {v}."],
          "Rooms", ["Where does {ref} meet?", "Which room is {ref} in?"], pair="{s} in the {v}"),
     Attr("fee", "money", ["{E} costs {v} a term.", "The term fee for {e} is {v}."],
          "Term fees", ["How much is {ref} per term?", "What's the fee for {ref}?"],
          lo=("the cheaper club", "the cheapest club"), hi=("the pricier club", "the priciest club"))],
    SCHOOL_FILLERS, ["Sam's after-school clubs:"],
))

FAMILIES.append(Family(
    "school", "trips", ["the field trip", "the school trip"],
    [E("museum", "the museum trip", "Museum", ["the museum trip", "the trip to the museum"],
       ["The museum trip.", "The museum one.", "I mean the trip to the museum."],
       date="March 12", cost="$8"),
     E("zoo", "the zoo trip", "Zoo", ["the zoo trip", "the trip to the zoo"],
       ["The zoo trip.", "The zoo one.", "I mean the trip to the zoo."],
       date="April 2", cost="$14")],
    [Attr("date", "date", ["{E} is on {v}.", "{E} takes place on {v}."],
          "Trip dates", ["When is {ref}?", "What's the date of {ref}?"], pair="{s} on {v}",
          lo=("the earlier trip", "the earliest trip"), hi=("the later trip", "the latest trip")),
     Attr("cost", "money", ["{E} costs {v}.", "Please send {v} for {e}."],
          "Costs", ["How much is {ref}?", "What does {ref} cost?"],
          lo=("the cheaper trip", "the cheapest trip"), hi=("the pricier trip", "the priciest trip"))],
    SCHOOL_FILLERS, ["Class newsletter:"],
))
