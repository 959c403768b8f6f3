// Package storetest is the conformance suite of store.Store: black-box tests
// of the behaviour that the interface's doc comments promise, which every
// implementation (Badger, PostgreSQL) must pass. The PostgreSQL server that
// tests of the PostgreSQL store run against is internal/testkit's
// (StartPostgres, SharedPostgres, OwnPostgres).
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Run runs the suite, each test as a subtest with a store of its own. open
// returns a new, empty store for t and closes it when t ends (t.Cleanup).
// Tests that move time forward need the store to take Now(t) as its clock;
// they are skipped when it does not.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, opener(open)) })
	}
}

// opener opens a store for one (sub)test, with its clock.
type opener func(t *testing.T) store.Store

// env is one test's store and clock.
type env struct {
	t   *testing.T
	st  store.Store
	clk *Clock
}

func (o opener) env(t *testing.T) *env {
	t.Helper()
	clk := NewClock()
	clocks.Store(t, clk)
	t.Cleanup(func() { clocks.Delete(t) })
	return &env{t: t, st: o(t), clk: clk}
}

// needClock skips the test when the store does not use the suite's clock.
func (e *env) needClock() {
	e.t.Helper()
	if !e.clk.taken.Load() {
		e.t.Skip("the store's clock is not storetest.Now(t): this test moves time")
	}
}

// Clock is a test's clock. It starts at the real time (so a store whose
// records also expire by the wall clock never drops one before the clock
// says so) and moves only forward, when the suite advances it.
type Clock struct {
	mu    sync.Mutex
	t     time.Time
	taken atomic.Bool
}

// NewClock returns a clock at the real time.
func NewClock() *Clock { return &Clock{t: time.Now()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var clocks sync.Map // *testing.T → *Clock

// Now returns the clock of the conformance test t, for the store that open
// makes for t (Options.Now of either store). Outside the suite it is
// time.Now.
func Now(t *testing.T) func() time.Time {
	if c, ok := clocks.Load(t); ok {
		c := c.(*Clock)
		c.taken.Store(true)
		return c.Now
	}
	return time.Now
}

const testIssuer = "https://issuer.example"

// account is a provider's report of an identity.
func account(subject, email string, verified bool) store.ExternalAccount {
	return store.ExternalAccount{
		Provider:      "test",
		Issuer:        testIssuer,
		Subject:       subject,
		Email:         email,
		EmailVerified: verified,
		Name:          "Name of " + subject,
		ImageURL:      "https://img.example/" + subject,
		Tokens:        store.TokenSet{AccessToken: "at-" + subject, RefreshToken: "rt-" + subject},
	}
}

func (e *env) signIn(in store.SignIn) store.SignInResult {
	e.t.Helper()
	res, err := e.st.SignIn(context.Background(), in)
	if err != nil {
		e.t.Fatalf("SignIn(%s): %v", in.Account.Subject, err)
	}
	return res
}

// checker is implemented by stores that can check their own invariants.
type checker interface {
	Check(ctx context.Context) ([]string, error)
}

// checkClean fails the test when the store's Check reports anything.
func (e *env) checkClean() {
	e.t.Helper()
	c, ok := store.Unwrap(e.st).(checker)
	if !ok {
		return
	}
	if problems, err := c.Check(context.Background()); err != nil || len(problems) > 0 {
		e.t.Errorf("Check = %q, %v; want none", problems, err)
	}
}

// view is everything the interface shows of a user.
type view struct {
	User     *store.User
	Accounts []*store.ExternalAccount
	Sessions []*store.Session
}

// snapshot returns everything the interface shows of the store, as JSON to
// compare: every user with its accounts and live sessions, newest first, and
// the redirect URLs.
func (e *env) snapshot() string {
	e.t.Helper()
	ctx := context.Background()
	var all struct {
		Users        []view
		RedirectURLs []*store.RedirectURL
	}
	for offset := 0; ; offset += 500 {
		users, total, err := e.st.Users(ctx, store.UserQuery{Limit: 500, Offset: offset})
		if err != nil {
			e.t.Fatalf("snapshot: %v", err)
		}
		for _, u := range users {
			all.Users = append(all.Users, e.view(u.ID))
		}
		if offset+500 >= total {
			break
		}
	}
	var err error
	if all.RedirectURLs, _, err = e.st.RedirectURLs(ctx, store.RedirectURLQuery{}); err != nil {
		e.t.Fatalf("snapshot: %v", err)
	}
	return jsonOf(e.t, all)
}

// jsonOf is v as indented JSON, to compare records (times compare by value,
// whatever their monotonic readings) and to print them.
func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *env) view(userID string) view {
	e.t.Helper()
	ctx := context.Background()
	u, err := e.st.User(ctx, userID)
	if err != nil {
		e.t.Fatalf("User(%s): %v", userID, err)
	}
	accs, err := e.st.ExternalAccounts(ctx, userID)
	if err != nil {
		e.t.Fatalf("ExternalAccounts(%s): %v", userID, err)
	}
	sess, err := e.st.Sessions(ctx, userID)
	if err != nil {
		e.t.Fatalf("Sessions(%s): %v", userID, err)
	}
	return view{u, accs, sess}
}

// counts returns how many users and accounts the store holds.
func (e *env) counts() (users, accounts int) {
	e.t.Helper()
	ctx := context.Background()
	list, total, err := e.st.Users(ctx, store.UserQuery{Limit: 500})
	if err != nil || len(list) != total {
		e.t.Fatalf("Users = %d of %d, %v", len(list), total, err)
	}
	for _, u := range list {
		accs, err := e.st.ExternalAccounts(ctx, u.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		accounts += len(accs)
	}
	return total, accounts
}

// linksTo signs in a new identity asserting email as verified, allowed to
// link by it, and returns the user it landed on: the user the store links
// that address to, or a new one. It changes the store (a new account).
func (e *env) linksTo(email string) string {
	e.t.Helper()
	probe := account(fmt.Sprint("probe-", probes.Add(1)), email, true)
	return e.signIn(store.SignIn{Account: probe, LinkByEmail: trustAll}).User.ID
}

// trustAll trusts every provider to vouch for linking by email.
func trustAll(string) bool { return true }

// trusting trusts only the providers named to vouch for linking by email.
func trusting(providers ...string) func(string) bool {
	return func(p string) bool { return slices.Contains(providers, p) }
}

var probes atomic.Int64

// signInsAtOnce runs the n sign-ins in(i) concurrently and returns the
// user each landed on.
func (e *env) signInsAtOnce(n int, in func(i int) store.SignIn) []string {
	var wg sync.WaitGroup
	users := make([]string, n)
	for i := range n {
		wg.Go(func() {
			res, err := e.st.SignIn(context.Background(), in(i))
			if err != nil {
				e.t.Errorf("SignIn: %v", err)
				return
			}
			users[i] = res.User.ID
		})
	}
	wg.Wait()
	return users
}

func userIDs(users []*store.User) []string {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	return ids
}

// tests is the suite, in the order Run runs it.
var tests = []struct {
	name string
	fn   func(t *testing.T, o opener)
}{
	{"SignIn_FirstCreatesUserAndAccountSecondFindsThem", signInFirstCreatesUserAndAccountSecondFindsThem},
	{"SignIn_RefusesNULInTheSubject", signInRefusesNULInTheSubject},
	{"SignIn_RefusesAnAddressWithANUL", signInRefusesAnAddressWithANUL},
	{"CreateUser_RefusesAnAddressWithANUL", createUserRefusesAnAddressWithANUL},
	{"Import_RefusesATakenSessionID", importRefusesATakenSessionID},
	{"Import_RefusesAnAddressWithANUL", importRefusesAnAddressWithANUL},
	{"SignIn_ConcurrentFirstSignInsCreateOneUser", signInConcurrentFirstSignInsCreateOneUser},
	{"SignIn_ConcurrentFirstSignInsWithOneEmailLinkToOneUser", signInConcurrentFirstSignInsWithOneEmailLinkToOneUser},
	{"SignIn_ConcurrentNewUsersAreAllCounted", signInConcurrentNewUsersAreAllCounted},
	{"SignIn_LinksByEmailOnlyWhenVerifiedAndAllowed", signInLinksByEmailOnlyWhenVerifiedAndAllowed},
	{"SignIn_UnverifiedEmailIsRecordedButNeverLinks", signInUnverifiedEmailIsRecordedButNeverLinks},
	{"SignIn_VerifiedEmailLinksToItsFirstHolderUntilDeleted", signInVerifiedEmailLinksToItsFirstHolderUntilDeleted},
	{"SignIn_LinkToUserLinksTheIdentity", signInLinkToUserLinksTheIdentity},
	{"SignIn_LinkToUserRefusesAnotherUsersIdentity", signInLinkToUserRefusesAnotherUsersIdentity},
	{"SignIn_LinkToUnknownUserIsNotFound", signInLinkToUnknownUserIsNotFound},
	{"SignIn_RejectsIncompleteIdentity", signInRejectsIncompleteIdentity},
	{"SignIn_SameSubjectAtTwoIssuersIsTwoIdentities", signInSameSubjectAtTwoIssuersIsTwoIdentities},
	{"SignIn_ChangedEmailWithdrawsTheOldVouching", signInChangedEmailWithdrawsTheOldVouching},
	{"SignIn_AdmitRefusalWritesNothing", signInAdmitRefusalWritesNothing},
	{"SignIn_LinkByEmailNeedsATrustedProviderOnBothSides", signInLinkByEmailNeedsATrustedProviderOnBothSides},
	{"SignIn_LinkByEmailRevokesTheHoldersSessions", signInLinkByEmailRevokesTheHoldersSessions},
	{"SignIn_PreAccountHijackLeavesTheVictimApart", signInPreAccountHijackLeavesTheVictimApart},
	{"SignIn_ConcurrentTakeOversMakeOneUser", signInConcurrentTakeOversMakeOneUser},
	{"Emails_AVerifiedAddressStandsForItsHolderOnly", emailsAVerifiedAddressStandsForItsHolderOnly},
	{"Emails_TakeOverWithdrawsTheAddressAndEndsTheSquattersSessions", emailsTakeOverWithdrawsTheAddressAndEndsTheSquattersSessions},
	{"Emails_AGivenUpAddressLeavesTheSessionsWithoutIt", emailsAGivenUpAddressLeavesTheSessionsWithoutIt},
	{"Emails_ImportLeavesAnAddressHeldElsewhereUnverified", emailsImportLeavesAnAddressHeldElsewhereUnverified},
	{"Emails_AnAddressIsTrimmedAndPlain", emailsAnAddressIsTrimmedAndPlain},
	{"Emails_ASpacedAddressIsTheAddress", emailsASpacedAddressIsTheAddress},
	{"Emails_ImportCleansAddresses", emailsImportCleansAddresses},
	{"Emails_EverySpellingOfADomainIsOneAddress", emailsEverySpellingOfADomainIsOneAddress},
	{"ExternalAccount_ReturnsTheAccount", externalAccountReturnsTheAccount},
	{"ExternalAccountByIdentity_FindsTheLinkedAccount", externalAccountByIdentityFindsTheLinkedAccount},
	{"UpdateExternalAccount_WritesWhatFnLeavesButNotTheIdentity", updateWritesWhatFnLeavesButNotTheIdentity},
	{"UpdateExternalAccount_FnErrorAbortsAndIsReturnedAsIs", updateFnErrorAbortsAndIsReturnedAsIs},
	{"UpdateExternalAccount_UnknownAccountIsNotFound", updateUnknownAccountIsNotFound},
	{"UpdateExternalAccount_ConcurrentCompareAndSwapHasOneWinner", updateConcurrentCompareAndSwapHasOneWinner},
	{"UpdateExternalAccount_ConcurrentIncrementsLoseNoUpdate", updateConcurrentIncrementsLoseNoUpdate},
	{"UpdateExternalAccount_EmailChangeFollowsOnTheUser", updateEmailChangeFollowsOnTheUser},
	{"Tokens_SignInWithoutAGrantKeepsTheHeldSet", tokensSignInWithoutAGrantKeepsTheHeldSet},
	{"Tokens_HalfWrittenSetsAreRefusedEverywhere", tokensHalfWrittenSetsAreRefusedEverywhere},
	{"DeleteExternalAccount_RemovesTheAccount", deleteAccountRemovesTheAccount},
	{"DeleteExternalAccount_RefusedByCheckChangesNothing", deleteAccountRefusedByCheckChangesNothing},
	{"DeleteExternalAccount_OfTheOnlyVoucherUnverifiesTheEmail", deleteAccountOfTheOnlyVoucherUnverifiesTheEmail},
	{"DeleteExternalAccount_OfAnotherUserIsNotFound", deleteAccountOfAnotherUserIsNotFound},
	{"DeleteExternalAccount_ConcurrentUnlinksKeepTheLastAccount", deleteAccountConcurrentUnlinksKeepTheLastAccount},
	{"DeleteExternalAccount_EndsTheSessionsSignedInThroughIt", deleteAccountEndsTheSessionsSignedInThroughIt},
	{"DeleteExternalAccount_ConcurrentWithASignInLeavesNoSessionThroughIt", deleteAccountConcurrentWithASignInLeavesNoSessionThroughIt},
	{"Users_PagesNewestFirstWithTheTotal", usersPagesNewestFirstWithTheTotal},
	{"Users_LimitAndOffsetDefaults", usersLimitAndOffsetDefaults},
	{"Users_FiltersByAnyAddressIgnoringCase", usersFiltersByAnyAddressIgnoringCase},
	{"Users_FilterAndOrderLikeClerk", usersFilterAndOrderLikeClerk},
	{"SearchUsers_FindsByThePrefixOfEveryTerm", searchFindsByThePrefixOfEveryTerm},
	{"ActiveSessions_FollowEveryChange", activeSessionsFollowEveryChange},
	{"UserAudit_KeepsTheLatestPerUser", userAuditKeepsTheLatestPerUser},
	{"SearchUsers_ForgetsOldValues", searchForgetsOldValues},
	{"SearchUsers_PagesNewestFirst", searchPagesNewestFirst},
	{"SearchUsers_TakesAnyQuery", searchTakesAnyQuery},
	{"CreateUser_RecordsEverythingAndLinksAFirstSignIn", createUserRecordsEverythingAndLinksAFirstSignIn},
	{"CreateUser_RefusesTakenAndInvalidValues", createUserRefusesTakenAndInvalidValues},
	{"CreateUser_ConcurrentSameUsernameMakesOne", createUserConcurrentSameUsernameMakesOne},
	{"UpdateUser_BanEndsSessionsAndRefusesSignIn", updateUserBanEndsSessionsAndRefusesSignIn},
	{"UpdateUser_KeepsIdentityMovesHandlesAndSessionsMetadata", updateUserKeepsIdentityMovesHandlesAndSessionsMetadata},
	{"DeleteUser_RemovesTheUserWithEverythingItOwns", deleteUserRemovesTheUserWithEverythingItOwns},
	{"DeleteUser_UnknownUserIsNotFound", deleteUserUnknownUserIsNotFound},
	{"DeleteUser_ConcurrentWithCreateSessionLeavesNoSession", deleteUserConcurrentWithCreateSessionLeavesNoSession},
	{"DeleteUser_ConcurrentWithLinkLeavesNoAccount", deleteUserConcurrentWithLinkLeavesNoAccount},
	{"Session_CreateGetDelete", sessionCreateGetDelete},
	{"Session_ErrorsNeverCarryTheID", sessionErrorsNeverCarryTheID},
	{"Session_ExpiresByTheClock", sessionExpiresByTheClock},
	{"Sessions_ListTheUsersLiveSessionsOldestFirst", sessionsListTheUsersLiveSessionsOldestFirst},
	{"CreateSession_RefusesBadSessions", createSessionRefusesBadSessions},
	{"TouchSessions_MovesActivityAndExpiryOnlyForward", touchSessionsMovesActivityAndExpiryOnlyForward},
	{"TouchSessions_NeverRevives", touchSessionsNeverRevives},
	{"TouchSessions_ConcurrentGatewaysKeepTheLatest", touchSessionsConcurrentGatewaysKeepTheLatest},
	{"Ephemeral_TakeReturnsTheRecordOnce", ephemeralTakeReturnsTheRecordOnce},
	{"Ephemeral_KindsAreSeparate", ephemeralKindsAreSeparate},
	{"Ephemeral_ExpiresByTheClock", ephemeralExpiresByTheClock},
	{"Ephemeral_ConcurrentTakersHaveOneWinner", ephemeralConcurrentTakersHaveOneWinner},
	{"Ephemeral_CreateRefusesALiveRecord", ephemeralCreateRefusesALiveRecord},
	{"Ephemeral_ConcurrentCreatorsHaveOneWinner", ephemeralConcurrentCreatorsHaveOneWinner},
	{"Reads_UnknownOrMalformedIDsAreNotFound", readsOfUnknownOrMalformedIDsAreNotFound},
	{"RedirectURLs_CreateListDelete", redirectURLsCreateListDelete},
	{"RedirectURLs_ConcurrentCreatesMakeOne", redirectURLsConcurrentCreatesMakeOne},
	{"RedirectURLs_PagesOldestFirstWithTheTotal", redirectURLsPagesOldestFirstWithTheTotal},
	{"RedirectURLs_VersionMovesWithEveryChange", redirectURLsVersionMovesWithEveryChange},
	{"Events_SignInRecordsCreationsThenOnlyRealChanges", eventsSignInRecordsCreationsThenOnlyRealChanges},
	{"Events_LinkRecordsTheAccountAndTheUsersChange", eventsLinkRecordsTheAccountAndTheUsersChange},
	{"Events_RefusedChangesRecordNothing", eventsRefusedChangesRecordNothing},
	{"Events_SessionsRecordCreatedEndedRevoked", eventsSessionsRecordCreatedEndedRevoked},
	{"Events_AccountUpdatesRecordOnlyReauthorizationAndUserChanges", eventsAccountUpdatesRecordOnlyReauthorizationAndUserChanges},
	{"Events_UnlinkRecordsTheDeletionAndTheUsersChange", eventsUnlinkRecordsTheDeletionAndTheUsersChange},
	{"Events_DeleteUserRecordsEachAccountThenTheUser", eventsDeleteUserRecordsEachAccountThenTheUser},
	{"Events_CarryNoTokenMaterial", eventsCarryNoTokenMaterial},
	{"Events_PageAfterACursorInCommitOrder", eventsPageAfterACursorInCommitOrder},
	{"Events_ConcurrentWritersNeverCommitBehindAReader", eventsConcurrentWritersNeverCommitBehindAReader},
	{"Events_DeleteBeforeKeepsTheRest", eventsDeleteBeforeKeepsTheRest},
	{"Meta_PutGetReplace", metaPutGetReplace},
	{"Check_StaysCleanAfterRandomOperations", checkStaysCleanAfterRandomOperations},
	{"Close_IsIdempotent", closeIsIdempotent},
}
