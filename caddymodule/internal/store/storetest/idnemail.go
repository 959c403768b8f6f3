package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// emailsEverySpellingOfADomainIsOneAddress: an internationalised domain is
// one address whichever way it is spelled (Unicode, xn--, upper case,
// U+3002 for a dot): the store records its ASCII form (store.CleanEmail),
// so a second user asserting another spelling gets it unverified, and the
// backend API finds it taken, and a query by any spelling finds it.
func emailsEverySpellingOfADomainIsOneAddress(t *testing.T, o opener) {
	const ascii = "victim@xn--bcher-kva.example"
	for _, order := range [][2]string{
		{"victim@bücher.example", ascii},
		{ascii, "victim@bücher.example"},
		{"victim@BÜCHER\u3002example", "victim@bücher.example"},
	} {
		t.Run(order[0]+"/"+order[1], func(t *testing.T) {
			e := o.env(t)
			ctx := context.Background()
			holder := e.signIn(store.SignIn{Account: accountAt("google", "owner", order[0], true)}).User
			if got := e.view(holder.ID).User.PrimaryEmail(); got != ascii {
				t.Errorf("the holder's primary address is %q, want %s", got, ascii)
			}
			second := e.signIn(store.SignIn{Account: accountAt("shady", "m", order[1], true)}).User
			if second.ID == holder.ID {
				t.Fatal("the second identity was linked to the holder")
			}
			for _, a := range e.view(second.ID).User.Emails {
				if a.Verified {
					t.Errorf("the second user holds %q verified", a.Email)
				}
			}
			e.standsFor(ascii, holder.ID, holder.ID, second.ID)
			if got := e.linksTo(order[1]); got != holder.ID {
				t.Errorf("%s links to %s, want the holder %s", order[1], got, holder.ID)
			}
			for _, other := range []string{order[1], "VICTIM@b\u00fccher\u3002example"} {
				if err := e.st.CreateUser(ctx, &store.User{Emails: emails(other)}); !errors.Is(err, store.ErrExists) {
					t.Errorf("CreateUser(%q) = %v, want it taken", other, err)
				}
			}
			if users, total, err := e.st.Users(ctx, store.UserQuery{Email: order[1]}); err != nil || total != 2 || len(users) != 2 {
				t.Errorf("Users(Email: %q) = %d users, total %d, %v; want the holder and the second user", order[1], len(users), total, err)
			}
			e.checkClean()
		})
	}
}
