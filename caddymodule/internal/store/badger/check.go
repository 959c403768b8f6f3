package badger

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Check reads the whole store in one snapshot and returns every violation of
// its invariants, one human-readable line each; none when healthy. A session is
// named by its user.
func (b *Store) Check(ctx context.Context) ([]string, error) {
	var c checker
	if err := b.view(ctx, c.run); err != nil {
		return nil, fmt.Errorf("checking store: %w", err)
	}
	return c.problems, nil
}

type checker struct {
	problems []string

	users         map[string]*store.User
	userIDs       []string                 // key order
	accounts      []*store.ExternalAccount // key order
	accountBy     map[string]*store.ExternalAccount
	identity      []keyValue // idx/identity, key order
	identitySet   map[string]string
	userEAC       []string // "<user id>/<eac id>", key order
	userEACSet    map[string]bool
	sessions      map[string]*store.Session
	sessionIDs    []string // key order
	userSess      []string // "<user id>/<sess id>", key order
	userSessSet   map[string]bool
	emails        []keyValue        // idx/email, key order
	emailSet      map[string]string // idx/email: address → user id
	created       []string          // idx/user_created: "<order>/<user id>", key order
	createdSet    map[string]bool
	userMail      []keyValue // idx/user_email: "<email>/<user id>" → order, key order
	userMailSet   map[string]bool
	handles       map[string]string      // idx/handle: "<kind>/<value>" → user id
	count         *string                // meta/user_count, nil when missing
	terms         map[string]termSources // idx/user_created values by "<order>/<user id>"
	termKeys      []string               // idx/term: "<term>\x00<order>/<user id>", key order
	sessionCounts map[int64]int64        // meta/sessions: by hour, the stripes added up
}

type keyValue struct{ key, value string }

func (c *checker) reportf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *checker) run(txn *badger.Txn) error {
	if err := c.load(txn); err != nil {
		return err
	}
	for _, a := range c.accounts {
		if c.users[a.UserID] == nil {
			c.reportf("account %s: its user %s is missing", a.ID, a.UserID)
		}
		switch got, ok := c.identitySet[a.Issuer+"\x00"+a.Subject]; {
		case !ok:
			c.reportf("account %s: no identity index entry for issuer %q subject %q", a.ID, a.Issuer, a.Subject)
		case got != a.ID:
			c.reportf("account %s: its identity index entry points at account %s", a.ID, got)
		}
		if !c.userEACSet[a.UserID+"/"+a.ID] {
			c.reportf("account %s: no user_eac index entry under its user %s", a.ID, a.UserID)
		}
		if err := a.Tokens.Check(); err != nil {
			c.reportf("account %s: %v", a.ID, err)
		}
	}
	for _, kv := range c.identity {
		a := c.accountBy[kv.value]
		switch {
		case a == nil:
			c.reportf("identity index entry %q: account %s is missing", kv.key, kv.value)
		case a.Issuer+"\x00"+a.Subject != kv.key:
			c.reportf("identity index entry %q: account %s has issuer %q subject %q", kv.key, a.ID, a.Issuer, a.Subject)
		}
	}
	for _, rest := range c.userEAC {
		uid, eid, _ := strings.Cut(rest, "/")
		switch a := c.accountBy[eid]; {
		case a == nil:
			c.reportf("user_eac entry %s/%s: the account is missing", uid, eid)
		case a.UserID != uid:
			c.reportf("user_eac entry %s/%s: the account belongs to user %s", uid, eid, a.UserID)
		}
	}
	for _, kv := range c.emails {
		switch u := c.users[kv.value]; {
		case u == nil:
			c.reportf("email index entry %q: user %s is missing", kv.key, kv.value)
		case !hasVerifiedEmail(u, kv.key):
			c.reportf("email index entry %q: user %s has no such verified email", kv.key, kv.value)
		}
	}
	c.checkUsers()
	c.checkSearch()
	c.checkSessionCounts()
	for _, id := range c.sessionIDs {
		s := c.sessions[id]
		if c.users[s.UserID] == nil {
			c.reportf("a session of user %s: the user is missing", s.UserID)
		}
		if !c.userSessSet[s.UserID+"/"+id] {
			c.reportf("a session of user %s has no user_sess index entry", s.UserID)
		}
		if u := c.users[s.UserID]; u != nil && !u.Presents(s) {
			c.reportf("a session of user %s carries %q, which the user does not hold", s.UserID, s.Email)
		}
	}
	for _, rest := range c.userSess {
		uid, sid, _ := strings.Cut(rest, "/")
		switch s := c.sessions[sid]; {
		case s == nil:
			c.reportf("user_sess entry of user %s: the session is missing", uid)
		case s.UserID != uid:
			c.reportf("user_sess entry of user %s: the session belongs to user %s", uid, s.UserID)
		}
	}
	return nil
}

// checkUsers checks each user's vouching accounts, and idx/user_created,
// idx/user_email and the user count against the users, both ways.
func (c *checker) checkUsers() {
	for _, id := range c.userIDs {
		u := c.users[id]
		if !c.createdSet[createdOrder(u.CreatedAt)+"/"+id] {
			c.reportf("user %s: no user_created index entry", id)
		}
		for kind, v := range u.Handles() {
			if c.handles[kind+"/"+v] != id {
				c.reportf("user %s: its %s %q is not indexed as its", id, kind, v)
			}
		}
		for _, e := range u.Emails {
			if !c.userMailSet[store.NormalizeEmail(e.Email)+"/"+id] {
				c.reportf("user %s: no user_email index entry for %q", id, e.Email)
			}
			c.checkVouching(u, &e)
		}
	}
	for _, rest := range c.created {
		order, uid, _ := strings.Cut(rest, "/")
		switch u := c.users[uid]; {
		case u == nil:
			c.reportf("user_created entry %s: user %s is missing", rest, uid)
		case createdOrder(u.CreatedAt) != order:
			c.reportf("user_created entry %s: user %s was created at %v", rest, uid, u.CreatedAt)
		}
	}
	for _, kv := range c.userMail {
		i := strings.LastIndexByte(kv.key, '/')
		email, uid := kv.key[:max(i, 0)], kv.key[i+1:]
		switch u := c.users[uid]; {
		case u == nil:
			c.reportf("user_email entry %q: user %s is missing", kv.key, uid)
		case !slices.ContainsFunc(u.Emails, func(e store.EmailAddress) bool { return store.NormalizeEmail(e.Email) == email }):
			c.reportf("user_email entry %q: user %s has no such address", kv.key, uid)
		case kv.value != createdOrder(u.CreatedAt):
			c.reportf("user_email entry %q: value %q is not the creation order of user %s", kv.key, kv.value, uid)
		}
	}
	for key, uid := range c.handles {
		kind, v, _ := strings.Cut(key, "/")
		if u := c.users[uid]; u == nil || u.Handles()[kind] != v {
			c.reportf("handle index entry %s: user %s is missing or has another %s", key, uid, kind)
		}
	}
	if c.count == nil {
		if len(c.users) > 0 {
			c.reportf("user count is missing; there are %d users", len(c.users))
		}
		return
	}
	switch n, err := strconv.Atoi(*c.count); {
	case err != nil:
		c.reportf("user count %q is not a number", *c.count)
	case n != len(c.users):
		c.reportf("user count is %d; there are %d users", n, len(c.users))
	}
}

// checkVouching: an address is verified exactly when some account (or the
// backend API) vouches for it, and each voucher is an account of the user
// that asserts this address as verified now (a stale voucher would let the
// address link); a verified address is the user's who holds it in the
// index, and no other's.
func (c *checker) checkVouching(u *store.User, e *store.EmailAddress) {
	if e.Verified != (len(e.VerifiedBy) > 0) {
		c.reportf("user %s: email %q has verified %v and %d vouching accounts", u.ID, e.Email, e.Verified, len(e.VerifiedBy))
	}
	if holder := c.emailSet[store.NormalizeEmail(e.Email)]; e.Verified && holder != u.ID {
		c.reportf("user %s: email %q is verified but the email index links it to %q", u.ID, e.Email, holder)
	}
	for _, aid := range e.VerifiedBy {
		switch a := c.accountBy[aid]; {
		case aid == store.VouchedByAPI:
		case a == nil:
			c.reportf("user %s: email %q is vouched for by missing account %s", u.ID, e.Email, aid)
		case a.UserID != u.ID:
			c.reportf("user %s: email %q is vouched for by account %s of user %s", u.ID, e.Email, aid, a.UserID)
		case !a.EmailVerified || store.NormalizeEmail(a.Email) != store.NormalizeEmail(e.Email):
			c.reportf("user %s: email %q is vouched for by account %s, which asserts %q (verified %v)", u.ID, e.Email, aid, a.Email, a.EmailVerified)
		}
	}
}

// load reads every record and index into c; undecodable records are reported.
func (c *checker) load(txn *badger.Txn) error {
	c.users = map[string]*store.User{}
	c.createdSet = map[string]bool{}
	c.userMailSet = map[string]bool{}
	c.emailSet = map[string]string{}
	c.accountBy = map[string]*store.ExternalAccount{}
	c.identitySet = map[string]string{}
	c.userEACSet = map[string]bool{}
	c.sessions = map[string]*store.Session{}
	c.userSessSet = map[string]bool{}
	c.handles = map[string]string{}
	c.terms = map[string]termSources{}
	c.sessionCounts = map[int64]int64{}
	scans := []struct {
		prefix string
		ttl    bool // records that expire: see scan
		fn     func(rest string, val []byte) error
	}{
		{prefixUser, false, func(id string, val []byte) error {
			var u store.User
			if c.decode("user "+id, val, &u) {
				if u.ID != id {
					c.reportf("user %s: the record says id %s", id, u.ID)
				}
				c.users[id] = &u
				c.userIDs = append(c.userIDs, id)
			}
			return nil
		}},
		{prefixEAC, false, func(id string, val []byte) error {
			var a store.ExternalAccount
			if c.decode("account "+id, val, &a) {
				if a.ID != id {
					c.reportf("account %s: the record says id %s", id, a.ID)
					a.ID = id
				}
				c.accounts = append(c.accounts, &a)
				c.accountBy[id] = &a
			}
			return nil
		}},
		{prefixSession, true, func(id string, val []byte) error {
			var s store.Session
			if c.decode("a session", val, &s) {
				c.sessionIDs = append(c.sessionIDs, id)
				c.sessions[id] = &s
			}
			return nil
		}},
		{prefixIdentity, false, func(key string, val []byte) error {
			c.identity = append(c.identity, keyValue{key, string(val)})
			c.identitySet[key] = string(val)
			return nil
		}},
		{prefixEmail, false, func(key string, val []byte) error {
			c.emails = append(c.emails, keyValue{key, string(val)})
			c.emailSet[key] = string(val)
			return nil
		}},
		{prefixUserEAC, false, func(rest string, _ []byte) error {
			c.userEAC = append(c.userEAC, rest)
			c.userEACSet[rest] = true
			return nil
		}},
		{prefixUserSess, true, func(rest string, _ []byte) error {
			c.userSess = append(c.userSess, rest)
			c.userSessSet[rest] = true
			return nil
		}},
		{prefixCreated, false, func(rest string, _ []byte) error {
			c.created = append(c.created, rest)
			c.createdSet[rest] = true
			return nil
		}},
		{prefixUserTerms, false, func(rest string, val []byte) error {
			ts := termSources{}
			if c.decode("the search terms of "+rest, val, &ts) {
				c.terms[rest] = ts
			}
			return nil
		}},
		{prefixSessionCount, false, func(rest string, val []byte) error {
			hour, _, _ := strings.Cut(rest, "/")
			h, herr := strconv.ParseInt(hour, 10, 64)
			n, nerr := strconv.ParseInt(string(val), 10, 64)
			if herr != nil || nerr != nil {
				c.reportf("session count %s: malformed (%q)", rest, val)
			}
			c.sessionCounts[h] += n
			return nil
		}},
		{prefixTerm, false, func(rest string, _ []byte) error {
			c.termKeys = append(c.termKeys, rest)
			return nil
		}},
		{prefixUserMail, false, func(rest string, val []byte) error {
			c.userMail = append(c.userMail, keyValue{rest, string(val)})
			c.userMailSet[rest] = true
			return nil
		}},
		{prefixHandle, false, func(key string, val []byte) error {
			c.handles[key] = string(val)
			return nil
		}},
		{keyUserCount, false, func(rest string, val []byte) error {
			if rest == "" { // the prefix also matches longer keys
				v := string(val)
				c.count = &v
			}
			return nil
		}},
	}
	for _, s := range scans {
		if err := scan(txn, s.prefix, s.ttl, s.fn); err != nil {
			return err
		}
	}
	return nil
}

// scan calls fn with the rest of the key and the value of every live record
// under prefix, in key order; val is only valid during the call. With
// skipExpiring it skips records within a second of their Badger expiry:
// Badger decides expiry by the wall clock at each read, so a session and its
// index entry, which expire together, could otherwise be seen one without the
// other within one snapshot.
func scan(txn *badger.Txn, prefix string, skipExpiring bool, fn func(rest string, val []byte) error) error {
	soon := uint64(time.Now().Unix()) + 1
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(prefix)
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		if exp := item.ExpiresAt(); skipExpiring && exp != 0 && exp <= soon {
			continue
		}
		rest := string(item.Key()[len(prefix):])
		if err := item.Value(func(val []byte) error { return fn(rest, val) }); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) decode(what string, val []byte, v any) bool {
	if err := json.Unmarshal(val, v); err != nil {
		c.reportf("%s: undecodable record: %v", what, err)
		return false
	}
	return true
}

func hasVerifiedEmail(u *store.User, norm string) bool {
	for _, e := range u.Emails {
		if e.Verified && store.NormalizeEmail(e.Email) == norm {
			return true
		}
	}
	return false
}
