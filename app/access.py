"""Who may do what to a user: every authorization decision of the service, in one place.

| action                              | anyone | the user themself           | an admin |
|-------------------------------------|--------|-----------------------------|----------|
| register (POST /users, /user/add)   | yes    |                             |          |
| see id and username                 | yes    | yes                         | yes      |
| see email                           | no     | yes                         | yes      |
| change email (PATCH)                | no     | yes                         | yes      |
| change password (PATCH)             | no     | yes, with current_password  | yes      |
| delete (DELETE)                     | no     | yes                         | yes      |
"""

from app.exceptions import Forbidden
from app.sessions import CurrentUser


def is_owner_or_admin(viewer: CurrentUser | None, user_id: int) -> bool:
    return viewer is not None and (viewer.user_id == user_id or viewer.is_admin)


def may_see_email(viewer: CurrentUser | None, user_id: int) -> bool:
    return is_owner_or_admin(viewer, user_id)


def require_owner_or_admin(viewer: CurrentUser, user_id: int) -> None:
    """For PATCH and DELETE: raise 403 unless `viewer` is that user or an admin."""
    if not is_owner_or_admin(viewer, user_id):
        raise Forbidden()


def needs_current_password(viewer: CurrentUser, user_id: int) -> bool:
    """Changing one's own password takes the current one (an admin resetting another's does
    not): a stolen session alone cannot lock the owner out."""
    return viewer.user_id == user_id


def acts_as_admin(viewer: CurrentUser, user_id: int) -> bool:
    """An admin acting on someone else's account: logged as an admin action."""
    return viewer.is_admin and viewer.user_id != user_id
