"""De-identification of DICOM datasets after the Basic Application Confidentiality Profile (PS3.15 Annex E).

Attributes that name or locate the patient, the staff, the institution, the device or the visit are removed
(X) or emptied when the image IODs require them (Z); instance UIDs are replaced (U) by UUID-derived UIDs
hashed from the old one, so every file of a study maps to the same new study, series and frame of
reference; private tags, curves and overlays go. Pixel data and geometry stay. Text burned into the pixels
is not looked for: head CT rarely has any, but screenshots and secondary captures may.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID

REMOVE, EMPTY, NEW_UID = "X", "Z", "U"

_EMPTIED = (
    "AccessionNumber", "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "ReferringPhysicianName",
    "StudyDate", "StudyTime", "StudyID", "ContentDate", "ContentTime", "ContentCreatorName",
    "PlacerOrderNumberImagingServiceRequest", "FillerOrderNumberImagingServiceRequest",
)  # fmt: skip
"""Type 2 in the image IODs: kept, with no value."""

_REMOVED = (
    # patient
    "PatientBirthTime", "PatientAge", "PatientSize", "PatientWeight", "PatientAddress", "PatientTelephoneNumbers",
    "PatientMotherBirthName", "PatientBirthName", "OtherPatientIDs", "OtherPatientNames", "OtherPatientIDsSequence",
    "IssuerOfPatientID", "PatientInsurancePlanCodeSequence", "PatientPrimaryLanguageCodeSequence",
    "PatientReligiousPreference", "PatientComments", "PatientState", "PatientSexNeutered", "PatientSpeciesDescription",
    "PatientBreedDescription", "MilitaryRank", "BranchOfService", "EthnicGroup", "Occupation", "MedicalRecordLocator",
    "MedicalAlerts", "Allergies", "SmokingStatus", "PregnancyStatus", "LastMenstrualDate", "SpecialNeeds",
    "AdditionalPatientHistory", "AdmittingDiagnosesDescription", "AdmittingDiagnosesCodeSequence", "AdmissionID",
    "IssuerOfAdmissionID", "AdmittingDate", "AdmittingTime", "CountryOfResidence", "RegionOfResidence",
    "CurrentPatientLocation", "PatientInstitutionResidence", "ResponsiblePerson", "ResponsiblePersonRole",
    "ResponsibleOrganization", "ReferencedPatientSequence", "ReferencedPatientAliasSequence",
    "ReferencedPatientPhotoSequence", "PatientTransportArrangements", "VisitComments", "ServiceEpisodeID",
    "ServiceEpisodeDescription", "IssuerOfServiceEpisodeID", "DischargeDiagnosisDescription", "PreMedication",
    "RouteOfAdmissions", "ClinicalTrialSponsorName", "ClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID",
    # institution and people
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "InstitutionCodeSequence",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers", "ReferringPhysicianIdentificationSequence",
    "ConsultingPhysicianName", "ConsultingPhysicianIdentificationSequence", "PerformingPhysicianName",
    "PerformingPhysicianIdentificationSequence", "PhysiciansOfRecord", "PhysiciansOfRecordIdentificationSequence",
    "NameOfPhysiciansReadingStudy", "PhysiciansReadingStudyIdentificationSequence", "OperatorsName",
    "OperatorIdentificationSequence", "RequestingPhysician", "RequestingService", "ScheduledPerformingPhysicianName",
    "PhysicianApprovingInterpretation", "InterpretationRecorder", "InterpretationTranscriber", "InterpretationAuthor",
    "InterpretationApproverSequence", "DistributionName", "DistributionAddress", "NamesOfIntendedRecipientsOfResults",
    "PersonName", "PersonAddress", "PersonTelephoneNumbers", "PersonIdentificationCodeSequence",
    "VerifyingObserverName", "VerifyingObserverIdentificationCodeSequence", "VerifyingOrganization",
    "ContentCreatorIdentificationCodeSequence", "AuthorObserverSequence", "ParticipantSequence",
    "CustodialOrganizationSequence", "OrderEnteredBy", "OrderEntererLocation", "OrderCallbackPhoneNumber",
    # device and station
    "StationName", "DeviceSerialNumber", "DeviceUID", "DeviceDescription", "GantryID", "DetectorID", "PlateID",
    "CassetteID", "PerformedStationAETitle", "PerformedStationName", "PerformedLocation", "ScheduledStationAETitle",
    "ScheduledStationName", "DateOfLastCalibration", "TimeOfLastCalibration",
    # study, series, request and procedure
    "StudyDescription", "SeriesDescription", "ProtocolName", "StudyComments", "StudyIDIssuer", "ReasonForStudy",
    "RequestAttributesSequence", "RequestedProcedureDescription", "RequestedProcedureID",
    "RequestedProcedureComments", "RequestedProcedureLocation", "ReasonForTheRequestedProcedure",
    "RequestedContrastAgent", "ImagingServiceRequestComments", "ReferencedStudySequence",
    "ReferencedPerformedProcedureStepSequence", "ProcedureCodeSequence", "PerformedProcedureStepDescription",
    "PerformedProcedureStepID", "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
    "PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime", "ScheduledProcedureStepDescription",
    "ScheduledProcedureStepID", "ScheduledProcedureStepLocation", "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime", "ScheduledProcedureStepEndDate", "ScheduledProcedureStepEndTime",
    "ResultsIDIssuer", "ResultsComments", "InterpretationText", "InterpretationDiagnosisDescription",
    "InterpretationIDIssuer", "IdentifyingComments",
    # dates, times and free text
    "SeriesDate", "SeriesTime", "AcquisitionDate", "AcquisitionTime", "AcquisitionDateTime", "InstanceCreationDate",
    "InstanceCreationTime", "OverlayDate", "OverlayTime", "CurveDate", "CurveTime", "TimezoneOffsetFromUTC",
    "ImageComments", "FrameComments", "AcquisitionComments", "DerivationDescription",
    "AcquisitionDeviceProcessingDescription", "ContributionDescription", "ModifiedImageDescription", "TextValue",
    "TextComments", "TextString",
    # signatures and stored originals
    "DigitalSignaturesSequence", "EncryptedAttributesSequence", "OriginalAttributesSequence",
    "ModifiedAttributesSequence", "MACParametersSequence", "ReferencedDigitalSignatureSequence",
    "ReferencedSOPInstanceMACSequence", "DataSetTrailingPadding",
)  # fmt: skip

_NEW_UIDS = (
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "MediaStorageSOPInstanceUID", "FrameOfReferenceUID",
    "ReferencedSOPInstanceUID", "ReferencedFrameOfReferenceUID", "RelatedFrameOfReferenceUID",
    "SynchronizationFrameOfReferenceUID", "ConcatenationUID", "DimensionOrganizationUID", "IrradiationEventUID",
    "InstanceCreatorUID", "FiducialUID", "StorageMediaFileSetUID", "TransactionUID", "UID", "TargetUID",
    "RequestedSOPInstanceUID", "DoseReferenceUID", "TemplateExtensionCreatorUID", "TemplateExtensionOrganizationUID",
    "ReferencedSOPInstanceUIDInFile", "PresentationDisplayCollectionUID", "PresentationSequenceCollectionUID",
)  # fmt: skip

PROFILE: dict[str, str] = {
    **dict.fromkeys(_REMOVED, REMOVE),
    **dict.fromkeys(_EMPTIED, EMPTY),
    **dict.fromkeys(_NEW_UIDS, NEW_UID),
}
"""Keyword -> action (X remove, Z empty, U new UID) of the identifying attributes; private tags always go."""

SEX_AGE = ("PatientSex", "PatientAge")
"""Kept under the Retain Patient Characteristics option (`keep_sex_age=True`)."""

_META_REMOVED = (
    "SourceApplicationEntityTitle", "SendingApplicationEntityTitle", "ReceivingApplicationEntityTitle",
    "SourcePresentationAddress", "SendingPresentationAddress", "ReceivingPresentationAddress",
    "PrivateInformationCreatorUID", "PrivateInformation",
)  # fmt: skip
"""File meta attributes that name the sending or receiving station."""

_KEPT_UIDS = frozenset(
    {"TransferSyntaxUID", "ImplementationClassUID", "CodingSchemeUID", "MappingResourceUID", "ContextUID"}
)
_UID_NAMESPACE = uuid.UUID("8c0d2a1e-5b7f-4e0c-9d7a-3f1b6c2e9a41")
METHOD = "DICOM PS3.15 Annex E Basic Profile (facegen)"
_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
_RETAIN_CHARACTERISTICS_CODE = ("113108", "Retain Patient Characteristics Option")


def new_uid(old: str, salt: str = "") -> UID:
    """The replacement of a UID: 2.25 + a name-based (SHA-1) UUID of salt + old, so equal inputs map equally.

    Without a secret `salt`, anyone holding the original UID can check a guess; with one, nobody else can.
    """
    return UID(f"2.25.{uuid.uuid5(_UID_NAMESPACE, salt + str(old).strip()).int}")


def _replaces_uid(element: DataElement) -> bool:
    """Whether a UI element holds instance UIDs to replace (not SOP classes, transfer syntaxes, code schemes)."""
    keyword = element.keyword
    return element.VR == "UI" and keyword not in _KEPT_UIDS and not keyword.endswith("ClassUID")


def _is_standard(uid: str) -> bool:
    """A UID the standard registers (an SOP class, transfer syntax...): it names no patient."""
    value = UID(str(uid).strip())
    return value.name != str(value)


def _removed_group(tag: int) -> bool:
    """Curve data (50xx) and overlays (60xx, even groups), which may hold annotations."""
    group = tag >> 16
    return group & 0xFF01 in (0x5000, 0x6000)


def _action(element: DataElement, keep_sex_age: bool) -> str | None:
    """What the profile does to an element, or None when it stays."""
    if element.tag.is_private or _removed_group(element.tag):
        return REMOVE
    if keep_sex_age and element.keyword in SEX_AGE:
        return None
    action = PROFILE.get(element.keyword)
    if action is None and _replaces_uid(element):
        return NEW_UID
    return action


def _replace_uids(element: DataElement, salt: str) -> None:
    """Replace each non-standard UID value of an element by its hashed successor."""
    value = element.value
    if value is None or value == "":
        return
    values = list(value) if element.VM > 1 else [value]
    new = [v if _is_standard(v) else new_uid(v, salt) for v in values]
    element.value = new if element.VM > 1 else new[0]


def _clean(ds: Dataset, keep_sex_age: bool, salt: str) -> None:
    """Apply the profile to a dataset and, recursively, to the items of the sequences it keeps."""
    for tag in list(ds.keys()):
        element = ds[tag]
        action = _action(element, keep_sex_age)
        if action == REMOVE:
            del ds[tag]
        elif action == EMPTY:
            element.value = Sequence() if element.VR == "SQ" else None
        elif action == NEW_UID:
            _replace_uids(element, salt)
        elif element.VR == "SQ":
            for item in element.value:
                _clean(item, keep_sex_age, salt)


def _code_item(value: str, meaning: str) -> Dataset:
    """A DCM coded-concept item."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item


def deidentify(ds: Dataset, *, keep_sex_age: bool = False, salt: str = "") -> Dataset:
    """A de-identified copy of `ds` (the input is not changed): profile attributes removed, emptied or re-UIDed.

    Patient sex and age stay only with `keep_sex_age`. The copy records PatientIdentityRemoved = YES and the
    method, as PS3.15 asks, so later readers know.
    """
    out = copy.deepcopy(ds)
    _clean(out, keep_sex_age, salt)
    meta = getattr(out, "file_meta", None)
    if meta is not None:
        for keyword in _META_REMOVED:
            if keyword in meta:
                delattr(meta, keyword)
        if "MediaStorageSOPInstanceUID" in meta:
            _replace_uids(meta["MediaStorageSOPInstanceUID"], salt)
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = METHOD
    codes = [_PROFILE_CODE] + ([_RETAIN_CHARACTERISTICS_CODE] if keep_sex_age else [])
    out.DeidentificationMethodCodeSequence = Sequence([_code_item(*code) for code in codes])
    out.LongitudinalTemporalInformationModified = "REMOVED"
    return out


def _strings(value: object) -> Iterator[str]:
    """The non-empty text of an element value (multi-valued, person names and bytes included)."""
    if value is None or isinstance(value, Dataset | Sequence):
        return
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("latin-1").strip("\x00 ")
        if text:
            yield text
        return
    if isinstance(value, list | tuple | MultiValue):
        for v in value:
            yield from _strings(v)
        return
    text = str(value).strip()
    if text:
        yield text


def _collect(ds: Dataset, *, everything: bool, keep_sex_age: bool, uids: bool) -> Iterator[str]:
    """Text of the elements the profile acts on; `everything` inside a sequence that goes as a whole."""
    for element in ds:
        action = "all" if everything else _action(element, keep_sex_age)
        if action == NEW_UID and not uids:
            continue
        if element.VR == "SQ":
            for item in element.value or ():
                yield from _collect(item, everything=action is not None, keep_sex_age=keep_sex_age, uids=uids)
        elif action is not None and not (action == NEW_UID and _is_standard_value(element)):
            yield from _strings(element.value)


def _is_standard_value(element: DataElement) -> bool:
    """Whether every value of a UI element is a registered standard UID."""
    return all(_is_standard(v) for v in _strings(element.value))


def identifying_values(ds: Dataset, *, uids: bool = True, keep_sex_age: bool = False) -> list[str]:
    """The text values `deidentify(ds, keep_sex_age=...)` would remove, empty or (with `uids`) replace.

    A de-identified dataset gives [] with `uids=False` (its UIDs are the new ones; test those against the
    originals instead).
    """
    found = list(_collect(ds, everything=False, keep_sex_age=keep_sex_age, uids=uids))
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        for element in meta:
            if element.keyword in _META_REMOVED or (uids and element.keyword == "MediaStorageSOPInstanceUID"):
                found.extend(_strings(element.value))
    return found
