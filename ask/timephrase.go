package ask

import (
	"strconv"
	"strings"
	"time"
)

const day = 24 * time.Hour

// span is a resolved time phrase: the half-open range [since, until), either end
// nil where unbounded. found is false when the question gave no time at all.
type span struct {
	since, until *time.Time
	found        bool
	present      bool   // "right now", "currently": the present, not a range
	future       bool   // "tomorrow", "next week": events cannot answer
	bad          string // a phrase that parsed but makes no range, and why
}

// timeParts collects the pieces of a time phrase before they are combined, because
// English spreads one range over the sentence: "between 2pm and 3pm yesterday".
type timeParts struct {
	whole      *span      // a phrase that is a range by itself: "this week"
	since      *time.Time // "since X"
	day        *time.Time // midnight of a named day
	dayIsToday bool       // the day was "today", which stops at now
	from, to   time.Duration
	hasClock   bool // from/to are a clock span within the day
}

// parseTime finds and consumes the time phrases of s, resolved against now (UTC).
func parseTime(s *sentence, now time.Time) span {
	today := midnight(now)
	var p timeParts
	out := span{}

	if s.takePhrase("right now", "at the moment", "at present", "currently", "now", "presently") {
		out.present = true
	}
	if s.takePhrase("tomorrow", "next week", "next month", "next year", "next hour", "next day", "in the future", "upcoming") ||
		s.phrase("in the next") >= 0 || s.phrase("over the next") >= 0 {
		out.future = true
		return out
	}

	for i := 0; i < len(s.words); i++ {
		if s.at(i) == "" {
			continue
		}
		if p.whole == nil {
			if sp, n := wholeAt(s, i, now, today); n > 0 {
				s.take(i, n)
				p.whole = &sp
				continue
			}
		}
		if s.at(i) == "since" && p.since == nil {
			if t, n := pointAt(s, i+1, now, today); n > 0 {
				s.take(i, n+1)
				p.since = &t
				continue
			}
		}
		if !p.hasClock {
			if w := s.at(i); w == "before" || w == "after" || w == "until" || w == "till" {
				// "before 2pm", "after 14:30": the part of the day on that side.
				if c, n := clockAt(s, i+1, w != "after"); n > 0 {
					s.take(i, n+1)
					p.from, p.to, p.hasClock = 0, c, true
					if w == "after" {
						p.from, p.to = c, day
					}
					continue
				}
			}
			if a, b, n := clockSpanAt(s, i); n > 0 {
				s.take(i, n)
				p.from, p.to, p.hasClock = a, b, true
				continue
			}
		}
		if p.day == nil {
			if d, isToday, n := dayAt(s, i, now, today); n > 0 {
				s.take(i, n)
				p.day, p.dayIsToday = &d, isToday
				// A part of the day right after it: "yesterday afternoon".
				if a, b, m := partOfDayAt(s, i+n); m > 0 && !p.hasClock {
					s.take(i+n, m)
					p.from, p.to, p.hasClock = a, b, true
				}
				continue
			}
		}
	}

	// Time words no phrase claimed: a guess at what they meant would be silent.
	for i := range s.words {
		w := s.at(i)
		if _, ok := months[w]; ok && w != "may" && w != "mar" {
			if isNumeric(s.at(i + 1)) {
				out.bad = "there is no such date"
			} else {
				out.bad = "a month needs a day (March 1) or \"in March\""
			}
			return out
		}
		if _, n := clockAt(s, i, false); n > 0 {
			out.bad = "a time of day needs a range, such as \"between 2pm and 3pm\" or \"since 2pm\""
			return out
		}
		if _, ok := weekdays[w]; ok && len(w) > 3 {
			out.bad = "the day is unclear: say \"on Tuesday\" or \"since Tuesday\""
			return out
		}
	}

	switch {
	case p.whole != nil:
		out.since, out.until, out.bad, out.found = p.whole.since, p.whole.until, p.whole.bad, true
	case p.since != nil:
		if p.since.After(now) {
			out.bad = "that start is in the future"
		}
		u := now
		out.since, out.until, out.found = p.since, &u, true
	case p.hasClock || p.day != nil:
		d, isToday := today, true
		if p.day != nil {
			d, isToday = *p.day, p.dayIsToday
		}
		var a, b time.Time
		switch {
		case p.hasClock:
			a, b = d.Add(p.from), d.Add(p.to)
		case isToday:
			a, b = d, now
		default:
			a, b = d, d.Add(day)
		}
		out.since, out.until, out.found = &a, &b, true
	}
	return out
}

// wholeAt matches a phrase at i that is a complete range, returning it and how many
// words it spans.
func wholeAt(s *sentence, i int, now, today time.Time) (span, int) {
	mk := func(a, b time.Time) span { return span{since: &a, until: &b} }
	w := s.at(i)
	// Lead-in words that only introduce the phrase that follows.
	lead := 0
	for s.at(i+lead) == "in" || s.at(i+lead) == "over" || s.at(i+lead) == "during" ||
		s.at(i+lead) == "within" || s.at(i+lead) == "for" || s.at(i+lead) == "the" {
		lead++
	}
	j := i + lead
	monday := today.AddDate(0, 0, -((int(today.Weekday()) + 6) % 7))
	month := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC)
	year := time.Date(today.Year(), 1, 1, 0, 0, 0, 0, time.UTC)

	switch w2 := s.at(j); {
	case w2 == "last" || w2 == "past" || w2 == "previous":
		// last N units, last hour, last week (calendar), last night, last weekend.
		if n, k := numberAt(s, j+1); k > 0 {
			if u, ok := unitAt(s, j+1+k); ok {
				return mk(back(now, n, u), now), lead + 2 + k
			}
		}
		if n, u, ok := compactDuration(s.at(j + 1)); ok {
			return mk(back(now, n, u), now), lead + 2
		}
		switch u := s.at(j + 1); {
		case u == "night" && w2 == "last":
			return mk(today.Add(-6*time.Hour), today.Add(6*time.Hour)), lead + 2
		case u == "weekend":
			return weekend(today), lead + 2
		case (u == "week" || u == "month" || u == "year") && w2 != "past" && lead == 0:
			// Bare "last week" is the calendar week; "over the last week" rolls.
			switch u {
			case "week":
				return mk(monday.AddDate(0, 0, -7), monday), lead + 2
			case "month":
				return mk(month.AddDate(0, -1, 0), month), lead + 2
			}
			return mk(year.AddDate(-1, 0, 0), year), lead + 2
		default:
			if unit, ok := unitAt(s, j+1); ok {
				return mk(back(now, 1, unit), now), lead + 2
			}
		}
	case w2 == "this":
		switch s.at(j + 1) {
		case "week":
			return mk(monday, now), lead + 2
		case "month":
			return mk(month, now), lead + 2
		case "year":
			return mk(year, now), lead + 2
		case "weekend":
			return weekend(today), lead + 2
		case "morning":
			return mk(today, today.Add(12*time.Hour)), lead + 2
		case "afternoon":
			return mk(today.Add(12*time.Hour), today.Add(18*time.Hour)), lead + 2
		case "evening":
			return mk(today.Add(18*time.Hour), today.Add(day)), lead + 2
		}
	case w2 == "weekend":
		return weekend(today), lead + 1
	case months[w2] != 0 && lead > 0 && w2 != "may" && !isDayOfMonth(s.at(j+1)):
		// "in March", "during March 2025": the whole month, the latest one begun.
		start := time.Date(today.Year(), months[w2], 1, 0, 0, 0, 0, time.UTC)
		n := lead + 1
		if y, err := strconv.Atoi(s.at(j + 1)); err == nil && y >= 1970 && y <= 9999 {
			start, n = time.Date(y, months[w2], 1, 0, 0, 0, 0, time.UTC), n+1
		} else if start.After(now) {
			start = start.AddDate(-1, 0, 0)
		}
		return mk(start, start.AddDate(0, 1, 0)), n
	case w2 == "tonight":
		return mk(today.Add(18*time.Hour), today.Add(day)), lead + 1
	case w2 == "ever" || w2 == "all-time":
		return span{}, lead + 1
	case w2 == "all" && s.at(j+1) == "time":
		return span{}, lead + 2
	}
	if w == "from" || w == "between" {
		return dateRangeAt(s, i, now, today)
	}
	return span{}, 0
}

// dateRangeAt matches "from|between DATE [CLOCK] (to|and|until) DATE [CLOCK]",
// or "from DATE" alone, which is that day.
func dateRangeAt(s *sentence, i int, now, today time.Time) (span, int) {
	a, ca, n := dateAt(s, i+1, now)
	if n == 0 {
		return span{}, 0
	}
	k := i + 1 + n
	start := a.Add(ca)
	if sep := s.at(k); sep == "to" || sep == "and" || sep == "until" || sep == "till" || sep == "through" {
		b, cb, m := dateAt(s, k+1, now)
		if m == 0 {
			// Only a clock after the separator: the same day.
			if c, cm := clockAt(s, k+1, true); cm > 0 && ca > 0 {
				b, cb, m = a, c, cm
			}
		}
		if m > 0 {
			if !explicitYear(s, k+1, m) {
				// An end date without a year is the first at or after the start.
				for b.Before(a) {
					b = b.AddDate(1, 0, 0)
				}
			}
			end := b.Add(cb)
			if ca == 0 && cb == 0 {
				end = b.Add(day) // days: the end day is included
			}
			sp := span{since: &start, until: &end}
			if !start.Before(end) {
				sp.bad = "the range ends before it starts"
			}
			return sp, k + 1 + m - i
		}
	}
	end := a.Add(day)
	if ca > 0 {
		end = now
	}
	sp := span{since: &start, until: &end}
	if !start.Before(end) {
		sp.bad = "that start is in the future"
	}
	return sp, n + 1
}

// explicitYear reports whether the n words of a date at i give its year.
func explicitYear(s *sentence, i, n int) bool {
	for k := i; k < i+n; k++ {
		w := s.words[k]
		if _, err := time.Parse("2006-01-02", w); err == nil {
			return true
		}
		if y, err := strconv.Atoi(w); err == nil && len(w) == 4 && y >= 1970 {
			return true
		}
	}
	return false
}

// weekend is the latest complete weekend before today: [Saturday, Monday).
func weekend(today time.Time) span {
	mon := today.AddDate(0, 0, -((int(today.Weekday()) + 6) % 7))
	sat := mon.AddDate(0, 0, -2)
	return span{since: &sat, until: &mon}
}

// back steps n units back from now; months and years are calendar ones.
func back(now time.Time, n int, unit string) time.Time {
	switch unit {
	case "month":
		return now.AddDate(0, -n, 0)
	case "year":
		return now.AddDate(-n, 0, 0)
	case "week":
		return now.AddDate(0, 0, -7*n)
	case "day":
		return now.AddDate(0, 0, -n)
	case "hour":
		return now.Add(-time.Duration(n) * time.Hour)
	case "minute":
		return now.Add(-time.Duration(n) * time.Minute)
	}
	return now.Add(-time.Duration(n) * time.Second)
}

var units = map[string]string{
	"second": "second", "seconds": "second", "sec": "second", "secs": "second",
	"minute": "minute", "minutes": "minute", "min": "minute", "mins": "minute",
	"hour": "hour", "hours": "hour", "hr": "hour", "hrs": "hour", "h": "hour",
	"day": "day", "days": "day", "d": "day",
	"week": "week", "weeks": "week", "wk": "week", "wks": "week",
	"month": "month", "months": "month",
	"year": "year", "years": "year",
}

func unitAt(s *sentence, i int) (string, bool) {
	u, ok := units[s.at(i)]
	return u, ok
}

var numberWords = map[string]int{
	"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
	"seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
	"fifteen": 15, "twenty": 20, "thirty": 30, "forty-five": 45, "sixty": 60,
	"couple": 2, "few": 3,
}

// compactDuration reads 24h, 5m, 30min, 2d, 1w.
func compactDuration(w string) (int, string, bool) {
	i := 0
	for i < len(w) && w[i] >= '0' && w[i] <= '9' {
		i++
	}
	if i == 0 || i > 6 {
		return 0, "", false
	}
	n, _ := strconv.Atoi(w[:i])
	switch w[i:] {
	case "s", "sec", "secs":
		return n, "second", n > 0
	case "m", "min", "mins":
		return n, "minute", n > 0
	case "h", "hr", "hrs":
		return n, "hour", n > 0
	case "d":
		return n, "day", n > 0
	case "w", "wk", "wks":
		return n, "week", n > 0
	}
	return 0, "", false
}

// numberAt reads a count at i: digits, a number word, or "a couple of".
func numberAt(s *sentence, i int) (int, int) {
	w := s.at(i)
	if n, err := strconv.Atoi(w); err == nil {
		if n <= 0 || n > 100000 {
			return 0, 0
		}
		return n, 1
	}
	if (w == "a" || w == "the") && (s.at(i+1) == "couple" || s.at(i+1) == "few") {
		k := 2
		if s.at(i+2) == "of" {
			k = 3
		}
		return numberWords[s.at(i+1)], k
	}
	if n, ok := numberWords[w]; ok {
		return n, 1
	}
	return 0, 0
}

// partOfDayAt matches "morning", "afternoon", "evening", "night" as an offset span.
func partOfDayAt(s *sentence, i int) (time.Duration, time.Duration, int) {
	switch s.at(i) {
	case "morning":
		return 0, 12 * time.Hour, 1
	case "afternoon":
		return 12 * time.Hour, 18 * time.Hour, 1
	case "evening", "night":
		return 18 * time.Hour, day, 1
	}
	return 0, 0, 0
}

// clockSpanAt matches "[between|from] CLOCK (and|to|until) CLOCK" as offsets into
// a day. An end at or before the start runs past midnight.
func clockSpanAt(s *sentence, i int) (time.Duration, time.Duration, int) {
	k := i
	if w := s.at(i); w == "between" || w == "from" {
		k++
	}
	a, n := clockAt(s, k, false)
	if n == 0 {
		return 0, 0, 0
	}
	k += n
	if sep := s.at(k); sep != "and" && sep != "to" && sep != "until" && sep != "till" {
		return 0, 0, 0
	}
	b, m := clockAt(s, k+1, true)
	if m == 0 {
		// "from 10 to 11am": the end's meridiem applies to a bare start.
		return 0, 0, 0
	}
	if b <= a {
		b += day
	}
	return a, b, k + 1 + m - i
}

// clockAt reads a time of day at i: 2pm, 2 pm, 2:30pm, 14:00, noon, midnight.
// end says whether midnight means the end of the day.
func clockAt(s *sentence, i int, end bool) (time.Duration, int) {
	w := s.at(i)
	switch w {
	case "noon", "midday":
		return 12 * time.Hour, 1
	case "midnight":
		if end {
			return day, 1
		}
		return 0, 1
	}
	n := 1
	mer := ""
	switch {
	case strings.HasSuffix(w, "am") || strings.HasSuffix(w, "pm"):
		mer, w = w[len(w)-2:], w[:len(w)-2]
	case s.at(i+1) == "am" || s.at(i+1) == "pm" || s.at(i+1) == "a.m" || s.at(i+1) == "p.m":
		mer, n = s.at(i + 1)[:1]+"m", 2
	}
	h, m := 0, 0
	hs, ms, colon := strings.Cut(w, ":")
	var err error
	if h, err = strconv.Atoi(hs); err != nil || len(hs) > 2 {
		return 0, 0
	}
	if colon {
		if m, err = strconv.Atoi(ms); err != nil || len(ms) != 2 || m > 59 {
			return 0, 0
		}
	}
	switch mer {
	case "":
		if !colon || h > 23 {
			return 0, 0 // a bare number is no time of day
		}
	default:
		if h < 1 || h > 12 {
			return 0, 0
		}
		h %= 12
		if mer == "pm" {
			h += 12
		}
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, n
}

// pointAt reads the start of a "since" phrase: a day, a date, a clock today (or
// yesterday when it is still ahead), last week or month.
func pointAt(s *sentence, i int, now, today time.Time) (time.Time, int) {
	if d, c, n := dateAt(s, i, now); n > 0 {
		return d.Add(c), n
	}
	if d, _, n := dayAt(s, i, now, today); n > 0 {
		return d, n
	}
	if c, n := clockAt(s, i, false); n > 0 {
		t := today.Add(c)
		if t.After(now) {
			t = t.Add(-day)
		}
		return t, n
	}
	if sp, n := wholeAt(s, i, now, today); n > 0 && sp.since != nil {
		return *sp.since, n
	}
	return time.Time{}, 0
}

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "sun": time.Sunday,
	"monday": time.Monday, "mon": time.Monday,
	"tuesday": time.Tuesday, "tue": time.Tuesday, "tues": time.Tuesday,
	"wednesday": time.Wednesday, "wed": time.Wednesday,
	"thursday": time.Thursday, "thu": time.Thursday, "thur": time.Thursday, "thurs": time.Thursday,
	"friday": time.Friday, "fri": time.Friday,
	"saturday": time.Saturday, "sat": time.Saturday,
}

// dayAt reads a named day at i: today, yesterday, [on|last] WEEKDAY, [on] DATE.
// A weekday is the most recent one, today included; "last" excludes today.
func dayAt(s *sentence, i int, now, today time.Time) (time.Time, bool, int) {
	lead := 0
	if w := s.at(i); w == "on" || w == "last" || w == "past" {
		lead = 1
	}
	switch s.at(i + lead) {
	case "today":
		if lead == 0 || s.at(i) == "on" {
			return today, true, lead + 1
		}
	case "yesterday":
		if lead == 0 || s.at(i) == "on" {
			return today.Add(-day), false, lead + 1
		}
	}
	if wd, ok := weekdays[s.at(i+lead)]; ok {
		back := (int(today.Weekday()) - int(wd) + 7) % 7
		if back == 0 && s.at(i) == "last" {
			back = 7
		}
		d := today.AddDate(0, 0, -back)
		return d, back == 0, lead + 1
	}
	if s.at(i) == "last" {
		return time.Time{}, false, 0
	}
	if d, c, n := dateAt(s, i+lead, now); n > 0 && c == 0 {
		return d, false, lead + n
	}
	return time.Time{}, false, 0
}

var months = map[string]time.Month{
	"january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3,
	"april": 4, "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7,
	"august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9, "october": 10,
	"oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}

// dateAt reads a calendar date at i, with an optional clock after it: 2026-03-01,
// March 1st, 1 March, "2026-03-04 23:30". A date without a year is the latest one
// not after today. It returns the date's midnight and the clock offset.
func dateAt(s *sentence, i int, now time.Time) (time.Time, time.Duration, int) {
	var d time.Time
	n := 0
	if t, err := time.Parse("2006-01-02", s.at(i)); err == nil {
		d, n = t.UTC(), 1
	} else {
		mo, dom := time.Month(0), 0
		if m, ok := months[s.at(i)]; ok {
			if x, ok := dayOfMonth(s.at(i + 1)); ok {
				mo, dom, n = m, x, 2
			}
		} else if x, ok := dayOfMonth(s.at(i)); ok {
			k := 1
			if s.at(i+1) == "of" {
				k = 2
			}
			if m, ok := months[s.at(i+k)]; ok {
				mo, dom, n = m, x, k+1
			}
		}
		if n == 0 {
			return time.Time{}, 0, 0
		}
		y := now.Year()
		if yy, err := strconv.Atoi(s.at(i + n)); err == nil && yy >= 1970 && yy <= 9999 {
			y, n = yy, n+1
		}
		d = time.Date(y, mo, dom, 0, 0, 0, 0, time.UTC)
		if d.Month() != mo {
			return time.Time{}, 0, 0 // February 30th
		}
		if y == now.Year() && n < 3 && d.After(now) {
			d = d.AddDate(-1, 0, 0)
		}
	}
	k := i + n
	if s.at(k) == "at" {
		k++
	}
	if c, m := clockAt(s, k, false); m > 0 {
		return d, c, k + m - i
	}
	return d, 0, n
}

func isDayOfMonth(w string) bool {
	_, ok := dayOfMonth(w)
	return ok
}

// dayOfMonth reads 1, 1st, 22nd, 3rd, 14th.
func dayOfMonth(w string) (int, bool) {
	for _, suf := range []string{"st", "nd", "rd", "th"} {
		w = strings.TrimSuffix(w, suf)
	}
	n, err := strconv.Atoi(w)
	if err != nil || n < 1 || n > 31 || len(w) > 2 {
		return 0, false
	}
	return n, true
}

func midnight(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}
